"""The task brokers: each of django-q2's, running the pipeline tick as it waits for tasks,
and the database (ORM) broker woken by PostgreSQL's LISTEN/NOTIFY instead of polling.

The tick (orders/recovery.py) queues due retries and nudges orders whose message was lost,
every PIPELINE_TICK_SECONDS. It runs in each cluster's pusher, the one process that loops
on `dequeue` (an empty dequeue returns within about a second on every broker here), so any
cluster started with `manage.py qcluster` ticks and nothing else needs deploying; web
processes never dequeue, and with Q_SYNC there is no cluster. A tick that fails is logged
and tried again a period later; it never stops the pusher.

The stock ORM broker sleeps `poll` seconds whenever the queue is empty, and the pipeline
enqueues each step just after the previous one commits, so every step of an order waited
about one poll interval (50 ms) for the pusher to wake up. Here an enqueue also sends a
NOTIFY (delivered when its transaction commits, so never before the row is visible), and an
empty dequeue waits on LISTEN: the next step starts at once, and an idle cluster costs
nothing. A notification that goes missing only delays a task to the next wait's end. The
NOTIFY goes after the enqueuing transaction's commit, never in it: PostgreSQL commits every
transaction that sent one under a single database-wide lock (docs/deployment.md, "Which
task broker to scale out on"). The shop queues every task after its commit, and there the
task's row and its NOTIFY are one statement.

A database that does not answer makes an empty dequeue: the pusher tries again a wait later.
Raising would stop it, and django-q's sentinel starts a new one only about ten seconds on.
"""

import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING

import psycopg
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, transaction
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.brokers.redis_broker import Redis
from django_q.conf import Conf
from django_q.models import OrmQ
from psycopg import sql

from framework.prepared_statements import statement_cursor
from framework.unsynced_commits import UNSYNCED_COMMIT, commits_unsynced

logger = logging.getLogger(__name__)


# The mixin below goes before a django-q2 broker in a broker's bases; the type checker reads it as one.
if TYPE_CHECKING:
    from django_q.brokers import Broker as _BrokerMixinBase
else:
    _BrokerMixinBase = object


class PipelineTicking(_BrokerMixinBase):
    """Runs the pipeline tick before a dequeue once PIPELINE_TICK_SECONDS have passed (0: never)."""

    _next_tick = 0.0

    def dequeue(self):
        self.tick_when_due()
        return super().dequeue()

    def tick_when_due(self) -> None:
        period = settings.PIPELINE_TICK_SECONDS
        now = time.monotonic()
        if period <= 0 or now < self._next_tick or Conf.SYNC:
            return
        self._next_tick = now + period
        from orders.recovery import run_pipeline_tick
        from webhooks.delivery import run_webhook_tick

        # The webhooks' outbox ticks alongside: it queues a delivery task per endpoint with events due.
        for tick in (run_pipeline_tick, run_webhook_tick):
            try:
                tick()
            except Exception:
                logger.warning("the %s failed; it runs again in %s s", tick.__name__, period, exc_info=True)
                connections.close_all()  # a broken connection is opened afresh next time


class TickingOrmBroker(PipelineTicking, ORM):
    """django-q2's ORM broker (on SQLite), with the pipeline tick."""


class TickingRedisBroker(PipelineTicking, Redis):
    """django-q2's Redis broker, with the pipeline tick."""


# How long an empty dequeue waits for a notification before looking at the table again
# (and letting the pusher check whether the cluster is stopping), as the Redis broker's BLPOP.
WAIT_SECONDS = 1.0


class ListeningOrmBroker(ORM):
    """The ORM broker on PostgreSQL, with LISTEN/NOTIFY in place of the poll sleep."""

    _listener: psycopg.Connection | None = None

    @property
    def channel(self) -> str:
        return f"django_q.{self.list_key}"

    def enqueue(self, task):
        connection = connections[Conf.ORM]
        if commits_unsynced(connection):
            # Every task of the shop is queued here, once its transaction has committed
            # (framework/queue.py): the row and its NOTIFY go in one statement, one commit,
            # not the ORM's create and a NOTIFY of its own (two round trips and two commits);
            # prepared on PostgreSQL, as every statement written once per process. The commit
            # does not wait for the disk: a task lost in a crash is a nudge the tick sends again.
            with statement_cursor(Conf.ORM) as cursor:
                row = [self.list_key or Conf.CLUSTER_NAME, task, timezone.now(), self.channel]
                cursor.execute(self._enqueue_sql(connection), row)
                task_id, _notified, _unsynced = cursor.fetchone()
            return task_id
        task_id = super().enqueue(task)
        # After the commit, in a statement of its own: a transaction that sent a NOTIFY
        # commits under a database-wide lock held through its WAL flush, so accepting
        # transactions queued there with their stock rows locked (bench/notify_commits.py:
        # 317 commits/s at 128 connections, 322 ms per commit; 1,033/s and 25 ms with the
        # NOTIFY after it). Robust: an order committed is not failed by it.
        transaction.on_commit(self._notify, using=Conf.ORM, robust=True)
        return task_id

    @staticmethod
    def _enqueue_sql(connection) -> str:
        """The task's row and the NOTIFY of its channel, in one statement that commits
        without waiting for the disk (framework/unsynced_commits.py)."""
        table = connection.ops.quote_name(OrmQ._meta.db_table)
        return (
            f"WITH queued AS (INSERT INTO {table} (key, payload, lock) VALUES (%s, %s, %s) RETURNING id) "
            f"SELECT id, pg_notify(%s, ''), {UNSYNCED_COMMIT} FROM queued"
        )

    def _notify(self) -> None:
        with connections[Conf.ORM].cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [self.channel])

    def dequeue(self):
        # Listen before looking, so a task enqueued in between still wakes the wait below.
        listener = self._listen()
        try:
            if tasks := self._claim():
                return tasks
        except (OperationalError, InterfaceError) as error:
            logger.warning("task broker cannot reach the database (%s); trying again in %s s", error, WAIT_SECONDS)
            connections[Conf.ORM].close()
            self._close_listener()
            time.sleep(WAIT_SECONDS)
            return None
        if listener is None:
            time.sleep(Conf.POLL)  # no listening connection: the stock poll
            return None
        try:
            for _ in listener.notifies(timeout=WAIT_SECONDS, stop_after=1):
                pass
        except psycopg.Error:
            logger.warning("task broker lost its LISTEN connection; it will reconnect", exc_info=True)
            self._close_listener()
        return None

    def _claim(self) -> list[tuple[int, str]]:
        """The oldest due tasks, each locked for this cluster until Conf.RETRY from now (the
        stock dequeue, oldest first), in one statement: the stock read and one conditional
        update per task cost ORM work and a commit each. Tasks another cluster is claiming
        are skipped. The commit does not wait for the disk: a claim a crash loses leaves the
        task due again, and every step is idempotent."""
        connection = self._usable_connection()
        table = connection.ops.quote_name(OrmQ._meta.db_table)
        unsynced = f", {UNSYNCED_COMMIT}" if commits_unsynced(connection) else ""
        now = timezone.now()
        with statement_cursor(Conf.ORM) as cursor:
            cursor.execute(
                f"UPDATE {table} SET lock = %s WHERE id IN (SELECT id FROM {table} WHERE key = %s AND lock < %s "
                f"ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id, payload{unsynced}",
                [now + timedelta(seconds=Conf.RETRY), self.list_key, now, Conf.BULK],
            )
            return sorted((task_id, payload) for task_id, payload, *_ in cursor.fetchall())

    def delete(self, task_id) -> None:
        """Take a task off the queue (done, or failed past its attempts), in one statement
        that does not wait for the disk: a task a crash puts back runs again, idempotent."""
        connection = self._usable_connection()
        table = connection.ops.quote_name(OrmQ._meta.db_table)
        unsynced = f"{UNSYNCED_COMMIT}" if commits_unsynced(connection) else "NULL"
        with statement_cursor(Conf.ORM) as cursor:
            cursor.execute(
                f"WITH gone AS (DELETE FROM {table} WHERE id = %s RETURNING id) SELECT {unsynced} FROM gone", [task_id]
            )

    def _usable_connection(self):
        """The queue's database connection, after what the stock broker does before each use:
        one broken or past its age is closed (and opened afresh by the statement)."""
        self.get_connection()
        return connections[Conf.ORM]

    def _listen(self) -> psycopg.Connection | None:
        if self._listener is not None and not self._listener.closed:
            return self._listener
        try:
            params = connections[Conf.ORM].get_connection_params()
            listener = psycopg.connect(
                **{k: v for k, v in params.items() if k not in ("cursor_factory", "context")}, autocommit=True
            )
            listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        except psycopg.Error:
            logger.warning("task broker could not LISTEN; polling instead", exc_info=True)
            return None
        self._listener = listener
        return listener

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
        self._listener = None


class PostgresOrmBroker(PipelineTicking, ListeningOrmBroker):
    """The ORM broker on PostgreSQL, woken by LISTEN/NOTIFY, with the pipeline tick."""
