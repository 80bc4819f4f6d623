"""Meters: where the CPU went during a load, per part of the stack, and how much memory
the workers hold.

All of them read /proc (bench/procfs.py) from this process; none of them changes what it
measures.
"""

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.database import Db
from bench.procfs import children, cpu_seconds, machine_busy_seconds, read_status, tree_cpu_seconds
from bench.stack import REDIS_BASE, Proc, Stack, find_cluster_processes


@dataclass
class CpuMeter:
    """Where the CPU went during a scenario: our web server, our cluster, our database
    backends, Redis, and everyone else on this shared machine."""

    stack: Stack
    backend_pids: Callable[[], list[int]]
    redis_pid: int | None = None
    # Database backends come and go (a recycled cluster worker reconnects): each one's CPU is
    # followed while it lives and kept, at its last reading, once it has gone.
    _backends: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._follow_backends, daemon=True).start()

    def close(self) -> None:
        self._stop.set()

    def _follow_backends(self) -> None:
        while not self._stop.wait(0.25):
            with contextlib.suppress(Exception):
                self._read_backends()

    def _read_backends(self) -> float:
        for pid in self.backend_pids():
            self._backends[pid] = max(self._backends.get(pid, 0.0), cpu_seconds(pid))
        return sum(self._backends.values())

    def snapshot(self) -> dict[str, float]:
        """CPU seconds so far of each part, and of the whole machine."""
        shot = {
            "web": tree_cpu_seconds(self.stack.web.pid) if self.stack.web else 0.0,
            "cluster": tree_cpu_seconds(self.stack.cluster.pid) if self.stack.cluster else 0.0,
            "postgres": self._read_backends(),
            "redis": cpu_seconds(self.redis_pid) if self.redis_pid else 0.0,
            "machine": machine_busy_seconds(),
        }
        return shot

    @staticmethod
    def spent(before: dict[str, float], after: dict[str, float], *, load_tool: float, orders: int) -> dict:
        """CPU seconds per part between two snapshots, and milliseconds of it per order."""
        spent = {k: max(0.0, after[k] - before[k]) for k in before}
        spent["load_tool"] = load_tool
        ours = sum(v for k, v in spent.items() if k != "machine")
        spent["others"] = max(0.0, spent["machine"] - ours)
        per_order = {k: round(1000 * v / orders, 2) for k, v in spent.items() if orders and k != "machine"}
        return {"seconds": {k: round(v, 2) for k, v in spent.items()}, "ms_per_order": per_order}


@dataclass
class MemorySampler:
    """Samples the RSS of every web worker and cluster worker twice a second."""

    web: Proc | None = None
    cluster: Proc | None = None
    interval: float = 0.5
    peaks: dict[str, int] = field(default_factory=lambda: {"web": 0, "cluster": 0, "cluster_other": 0})
    latest: dict[str, list[int]] = field(default_factory=lambda: {"web": [], "cluster": []})
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(2)

    def web_workers(self) -> list[int]:
        """The pids of gunicorn's workers (none once it has stopped)."""
        return children(self.web.pid) if self.web and self.web.alive() else []

    def sample(self) -> None:
        """Read every worker's RSS now: the latest per group, and the peaks so far."""
        groups = {"web": self.web_workers(), **find_cluster_processes(self.cluster)}
        for group, pids in groups.items():
            for pid in pids:
                status = read_status(pid)
                self.peaks[group] = max(self.peaks[group], status.get("VmHWM", 0))
            if group in self.latest:
                self.latest[group] = [read_status(pid).get("VmRSS", 0) for pid in pids]

    def summarise(self) -> dict:
        """The peaks of the run so far and the workers' latest RSS, in MB."""
        return {
            "web_worker_peak_mb": convert_kib_to_mb([self.peaks["web"]])[0],
            "cluster_worker_peak_mb": convert_kib_to_mb([self.peaks["cluster"]])[0],
            "cluster_other_peak_mb": convert_kib_to_mb([self.peaks["cluster_other"]])[0],
            "web_workers_now_mb": convert_kib_to_mb(self.latest["web"]),
            "cluster_workers_now_mb": convert_kib_to_mb(self.latest["cluster"]),
        }

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            # A process that vanishes mid-read is simply missed; the next sample sees its successor.
            with contextlib.suppress(Exception):
                self.sample()


class BackendCpu:
    """Follows the CPU time of every server process of one database while a load runs, so
    that backends which exit at its end are still counted."""

    def __init__(self, db_name: str, interval: float = 0.1):
        self.db = Db(db_name)
        self.interval = interval
        self.baseline = self._read()
        self.seen = dict(self.baseline)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _read(self) -> dict[int, float]:
        return {pid: cpu_seconds(pid) for pid in self.db.list_backend_pids()}

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            for pid, cpu in self._read().items():
                self.seen[pid] = max(cpu, self.seen.get(pid, 0.0))

    def stop(self) -> float:
        """Stop following; the CPU seconds the backends spent since the start."""
        self._stop.set()
        self._thread.join(2)
        self.db.conn.close()
        return sum(cpu - self.baseline.get(pid, 0.0) for pid, cpu in self.seen.items())


def convert_kib_to_mb(kib_values: list[int]) -> list[float]:
    """KiB from /proc as MB (10^6 bytes), the unit of the targets."""
    return [round(v * 1024 / 1e6, 1) for v in kib_values]


def find_redis_pid() -> int | None:
    """The Redis server's pid, for its CPU time; None when Redis does not say."""
    import redis

    try:
        return int(redis.from_url(REDIS_BASE).info("server")["process_id"])
    except Exception:
        return None
