"""The task cluster's sentinel, made to survive a worker killed by a signal.

django-q2's workers take tasks from one `multiprocessing.Queue`; an idle worker waits inside
`get()` holding the queue's read lock. Killed there (the OOM killer, a kill -9), it takes the
lock with it: every other worker, and each one the sentinel starts in its place, waits on
that lock forever, the pusher blocks once the queue is full, and the cluster stops taking
tasks and ticking while looking alive (django-q2 issue #23, open). The fault suite found it
with workers killed at random during a run of orders: 40 of 80 orders waited until the test
gave up.

So when a worker dies by a signal, this sentinel gives the cluster a fresh task queue: the
pusher is stopped (killed if it is stuck pushing onto the old queue) and started again on the
new queue with a new pool of workers; the old workers finish the task they hold, if any, and
are then stopped. Tasks still waiting in the old queue are dropped: a queue message is only a
nudge (DESIGN.md), and the ORM broker hands unacknowledged tasks out again after `retry`,
the pipeline tick nudges their orders sooner.

The sentinel also keeps the cluster's heartbeat (`CLUSTER_HEARTBEAT_FILE`, read by `manage.py
cluster_alive`, the container's liveness probe): every `CLUSTER_HEARTBEAT_SECONDS` it puts a
beat onto its own task queue, and the worker that takes it touches the file. A cluster whose
workers no longer take tasks (stuck on a lock, a full queue, a stopped process) stops beating
as surely as a dead one, as Sentry self-hosted's consumers fail their healthcheck.
"""

import logging
import threading
import time
import uuid
from multiprocessing import Event, Process
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from queue import Empty

from django import db
from django.conf import settings
from django.utils import timezone
from django_q.cluster import Sentinel
from django_q.conf import Conf
from django_q.queues import Queue

logger = logging.getLogger(__name__)

PUSHER_STOP_SECONDS = 5.0
RETIRING_POLL_SECONDS = 0.1
# A worker's timer: -1 idle, 0 timed out (the sentinel stops it), -2 recycled, > 0 busy.
IDLE, TIMED_OUT, RECYCLED = -1, 0, -2


class RecoveringSentinel(Sentinel):
    """django-q2's `Sentinel`, but a worker killed by a signal gets the cluster a new task queue,
    and the workers keep a heartbeat file."""

    def guard(self) -> None:
        threading.Thread(target=self.send_heartbeats, name="heartbeat", daemon=True).start()
        super().guard()

    def stop(self) -> None:
        """Stop after the tasks the workers hold, not after every task waiting in the local queue.

        django-q2 puts its stop pills behind whatever the pusher already fetched, so a loaded
        cluster ran all of it first and outlived a container's stop budget. The tasks taken out
        here are nudges (DESIGN.md): the broker hands unacknowledged ones out again and the
        pipeline tick nudges their orders.
        """
        dropped = drain(self.task_queue)
        if dropped:
            logger.info("stopping: %d queued task(s) left to the broker and the pipeline tick", dropped)
        super().stop()

    def send_heartbeats(self) -> None:
        """Until the cluster stops: a beat onto the task queue every CLUSTER_HEARTBEAT_SECONDS."""
        while not self.stop_event.is_set():
            # self.task_queue is read each time: replace_task_queue() swaps it. A full queue
            # blocks the put, and so the beat: the workers are not keeping up, or not taking.
            self.task_queue.put(heartbeat_task(settings.CLUSTER_HEARTBEAT_FILE))
            self.stop_event.wait(settings.CLUSTER_HEARTBEAT_SECONDS)

    # Set by django-q2's Sentinel, which ships no types: what this class relies on.
    pool: list[Process]
    pusher: Process
    monitor: Process
    event_out: EventType
    pool_size: int

    def reincarnate(self, process) -> None:
        if process not in self.pool and process not in (self.monitor, self.pusher):
            # A worker of a pool already replaced: the guard loop is still going through the
            # old pool's list, and the retiring thread stops its workers.
            return
        killed = (
            process in self.pool
            and process.exitcode is not None
            and process.exitcode < 0
            and process.timer.value not in (TIMED_OUT, RECYCLED)
        )
        super().reincarnate(process)
        if killed:
            logger.critical(
                "worker %s was killed by signal %d: replacing the task queue it may have locked",
                process.name,
                -process.exitcode,
            )
            self.replace_task_queue()

    def replace_task_queue(self) -> None:
        """A new task queue, pusher and pool of workers; the old workers retire once idle."""
        old_pusher, old_workers = self.pusher, list(self.pool)
        self.event_out.set()  # the pusher stops after its current dequeue...
        old_pusher.join(PUSHER_STOP_SECONDS)
        if old_pusher.is_alive():  # ...unless it waits to put onto the locked queue
            old_pusher.kill()
            old_pusher.join()
        self.task_queue = Queue(maxsize=Conf.QUEUE_LIMIT) if Conf.QUEUE_LIMIT else Queue()
        self.event_out = Event()
        self.pool = []
        if not Conf.SYNC:
            db.connections.close_all()  # forked children must not share the sentinel's connections
        for _ in range(self.pool_size):
            self.spawn_worker()
        self.pusher = self.spawn_pusher()
        threading.Thread(target=retire_workers, args=(old_workers,), daemon=True).start()


def retire_workers(workers: list) -> None:
    """Stop each worker once it holds no task: it only waits on the abandoned queue then."""
    while workers:
        for worker in list(workers):
            if not worker.is_alive() or worker.timer.value in (IDLE, TIMED_OUT, RECYCLED):
                worker.kill()
                worker.join()
                workers.remove(worker)
        time.sleep(RETIRING_POLL_SECONDS)


def drain(task_queue) -> int:
    """Take every task waiting in a local task queue; returns how many."""
    taken = 0
    while True:
        try:
            task_queue.get(timeout=0.05)
        except Empty:
            return taken
        taken += 1


def heartbeat_task(path: str) -> dict:
    """A task package as the pusher makes them, for this cluster's workers only (never the broker).

    `save: False` keeps the monitor from writing a task row for it, and without an `ack_id`
    there is no broker message to acknowledge.
    """
    return {
        "id": uuid.uuid4().hex,
        "name": "cluster-heartbeat",
        "func": "framework.cluster.beat_heart",
        "args": (path,),
        "kwargs": {},
        "save": False,
        "started": timezone.now(),
    }


def beat_heart(path: str) -> None:
    """Touch the heartbeat file (run by a worker: proof that the workers take tasks)."""
    heartbeat = Path(path)
    heartbeat.parent.mkdir(parents=True, exist_ok=True)
    heartbeat.touch()


def heartbeat_age(path: str) -> float | None:
    """Seconds since the cluster's last heartbeat, None when it has never beaten."""
    try:
        return time.time() - Path(path).stat().st_mtime
    except FileNotFoundError:
        return None
