"""Real processes on the test database: a gunicorn web server and `manage.py qcluster`.

The unit and API tests run the pipeline inline; the tests that use the `shop` fixture run
it the way production does: orders placed over HTTP to a web server process, steps run by
a separate `qcluster` process whose workers can be killed with SIGKILL. Every process gets
the test database's URL, a queue that only it and the test use, emails written to files
and receipts kept in the test's own folder. Each one runs in its own process group, so the
fixture can stop it (or kill it with every worker it forked) whatever the test did.
"""

import contextlib
import email
import email.policy
import io
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from django.db import connection

from bench.procfs import children, cluster_processes
from bench.stack import LIFTED_ABUSE_LIMITS
from tests.support import PROJECT_DIR
from tests.support.ordering import post_order
from tests.support.waiting import wait_until

PYTHON = sys.executable
# Bounds on every wait, so a broken pipeline fails a test instead of hanging the run.
START_TIMEOUT = 60
ORDER_TIMEOUT = 60
STOP_TIMEOUT = 15
STUCK_AFTER_SECONDS = 2

# Variables of the developer's shell that would point a process elsewhere than the test's world.
NOT_INHERITED = {
    "DATABASE_URL",
    "REDIS_URL",
    "EMAIL_HOST",
    "AWS_STORAGE_BUCKET_NAME",
    "PAYMENT_GATEWAY",
    "Q_SYNC",
    "Q_CLUSTER_NAME",
    "DJANGO_DEBUG",
    "PROMETHEUS_MULTIPROC_DIR",  # the test process's own; each shop's processes share one under VAR_DIR
    "PAYMENT_SIMULATED_FAULTS",
}


def database_url() -> str:
    """The URL of the database this test runs on (pytest-django's test_<name>)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        name = str(db["NAME"])
        if "memory" in name or not Path(name).is_absolute():
            pytest.fail(f"processes cannot share an in-memory SQLite database ({name}); see tests/conftest.py")
        return f"sqlite:///{name}"
    if connection.vendor == "postgresql":
        user = quote(db["USER"] or "", safe="")
        password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}{port}/{db['NAME']}"
    pytest.fail(f"no process tests for {connection.vendor}")


class Process:
    """One started process (and everything it forks), its output kept in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_path: Path):
        self.name = name
        self.stopped = False
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.popen = subprocess.Popen(
            args,
            cwd=PROJECT_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a kill reaches every worker
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout: float = START_TIMEOUT) -> re.Match:
        def logged() -> re.Match | None:
            if match := re.search(pattern, self.log()):
                return match
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.popen.returncode}:\n{self.log()[-4000:]}")
            return None

        return wait_until(
            logged,
            timeout=timeout,
            message=lambda: f"{self.name} did not log {pattern!r} within {timeout}s:\n{self.log()[-4000:]}",
        )

    def children(self) -> list[int]:
        """The pids of the processes it forked (a gunicorn master's workers)."""
        return children(self.popen.pid) if self.popen.poll() is None else []

    def cluster_workers(self) -> list[int]:
        """The pids of a `qcluster`'s worker processes (not its sentinel, pusher or monitor)."""
        return cluster_processes(self.popen.pid)["cluster"] if self.popen.poll() is None else []

    def pause(self) -> None:
        """SIGSTOP the whole process group: it holds whatever it held, and does nothing more."""
        self._signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_group(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the whole process group: no worker gets to finish or clean up."""
        self._signal_group(signal.SIGKILL)
        self.popen.wait(timeout=STOP_TIMEOUT)
        self._wait_for_group_gone()

    def stop(self) -> None:
        """Ask politely (SIGTERM), then kill whatever is left of the group."""
        if self.stopped:
            return
        self.stopped = True
        if self.popen.poll() is None:
            # Only the leader: it stops its own workers in order (a cluster told twice hangs).
            self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=STOP_TIMEOUT)
        self._signal_group(signal.SIGKILL)
        if self.popen.poll() is None:
            self.popen.wait(timeout=STOP_TIMEOUT)
        self._wait_for_group_gone()
        self._log.close()

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def _wait_for_group_gone(self) -> None:
        # Forked workers are reparented when the leader dies; wait until none holds the database.
        def gone() -> bool:
            try:
                os.killpg(self.popen.pid, 0)
            except ProcessLookupError:
                return True
            return False

        wait_until(
            gone,
            timeout=STOP_TIMEOUT,
            interval=0.05,
            message=f"{self.name}: processes of group {self.popen.pid} survived SIGKILL",
        )


class Shop:
    """The shop as separate processes on the test database, started by the test as it needs."""

    def __init__(self, tmp_path: Path, cluster_name: str):
        self.dir = tmp_path
        self.var_dir = tmp_path / "var"
        self.email_dir = tmp_path / "emails"
        self.var_dir.mkdir()
        self.email_dir.mkdir()
        self.cluster_name = cluster_name
        self.url = ""
        self.processes: list[Process] = []
        self.extra_env: dict[str, str] = {}

    def env(self, **overrides: str) -> dict[str, str]:
        from django_q.conf import Conf

        env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
        env.update(
            DATABASE_URL=database_url(),
            # One key everywhere: queue messages and receipt links are signed by one process
            # and checked by another (the test process enqueues too).
            DJANGO_SECRET_KEY=Conf.SECRET_KEY,
            VAR_DIR=str(self.var_dir),
            Q_SYNC="0",
            Q_CLUSTER_NAME=self.cluster_name,
            Q_WORKERS="2",
            Q_POLL="0.05",
            PIPELINE_BACKOFF_SCALE="0.01",
            ORDER_STUCK_AFTER_SECONDS=str(STUCK_AFTER_SECONDS),
            EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
            EMAIL_FILE_PATH=str(self.email_dir),
            PUBLIC_BASE_URL=self.url or "http://127.0.0.1",
            PYTHONUNBUFFERED="1",
            LOG_LEVEL="INFO",
            PAYMENT_SIMULATED_FAULTS="true",
            **LIFTED_ABUSE_LIMITS,  # tests place many orders from one address
            # Tests fail providers on purpose: breakers stay closed unless a test sets a threshold.
            BREAKER_FAILURES="1000000",
        )
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def _start(self, name: str, args: list[str], **env: str) -> Process:
        process = Process(name, args, self.env(**env), self.dir / f"{name}-{len(self.processes)}.log")
        self.processes.append(process)
        return process

    def start_web(self, *, workers: int = 1, threads: int = 8, **env: str) -> str:
        """Serve the app with gunicorn on an ephemeral loopback port; returns its base URL."""
        process = self._start(
            "web",
            [
                PYTHON, "-m", "gunicorn", "config.wsgi",
                "--bind", "127.0.0.1:0",
                "--workers", str(workers), "--threads", str(threads),
                "--timeout", "60", "--no-control-socket",
            ],
            **env,
        )  # fmt: skip
        port = process.wait_for_log(r"Listening at: http://127\.0\.0\.1:(\d+)").group(1)
        self.url = f"http://127.0.0.1:{port}"

        def answering() -> bool:
            # The master listens before a worker has booted: until one has, a request is
            # refused or (on a loaded machine) waits in the backlog past its timeout.
            try:
                return requests.get(f"{self.url}/api/products/", timeout=5).status_code == 200
            except (requests.ConnectionError, requests.Timeout):
                return False

        wait_until(
            answering, timeout=START_TIMEOUT, message=lambda: f"web server not answering:\n{process.log()[-4000:]}"
        )
        return self.url

    def start_cluster(self, *, workers: int = 2, **env: str) -> Process:
        """Start `manage.py qcluster` and wait until it is taking tasks."""
        process = self._start("qcluster", [PYTHON, "manage.py", "qcluster"], Q_WORKERS=str(workers), **env)
        process.wait_for_log(r"Q Cluster .+ running")
        return process

    def manage(self, *args: str, **env: str) -> str:
        """Run a management command to its end with the shop's environment; returns its output."""
        result = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=PROJECT_DIR,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
        )
        assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def logs(self) -> str:
        return "\n".join(f"==== {p.log_path.name}\n{p.log()[-6000:]}" for p in self.processes)

    # --- what a shopper does and sees ------------------------------------------------------

    def place_order(self, lines: list[tuple[str, int]], *, payment_method: str = "pm_card_visa", **kwargs) -> dict:
        """Place an order over HTTP, expect it accepted (202), and return the API's body;
        `kwargs` are what `post_order` takes beside the lines: email, headers, timeout."""
        response = post_order(self.url, dict(lines), pay_with=payment_method, **kwargs)
        assert response.status_code == 202, response.text
        return response.json()

    def order(self, reference: str) -> dict:
        response = requests.get(f"{self.url}/api/orders/{reference}/", timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for_final_state(self, reference: str, timeout: float = ORDER_TIMEOUT) -> dict:
        """Poll the order's status URL until it reaches a final state and has its receipt or failure."""
        return wait_until(
            lambda: (body := self.order(reference))["is_final"] and body,
            timeout=timeout,
            interval=0.2,
            message=lambda: (
                f"order {reference} still {self.order(reference)['state']} after {timeout}s:\n{self.logs()}"
            ),
        )

    def emails(self) -> list[EmailMessage]:
        """Every email the processes wrote through the file backend."""
        messages = []
        for path in sorted(self.email_dir.glob("*.log")):
            for chunk in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
                if chunk.strip():
                    messages.append(email.message_from_bytes(chunk, policy=email.policy.default))
        return messages


def pdf_text(pdf: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def wait_until_stale(reference: str) -> None:
    """Wait until the order looks stuck to the sweeper (untouched for ORDER_STUCK_AFTER_SECONDS)."""
    from django.utils import timezone

    from orders.models import Order

    wait_until(
        lambda: (
            Order.objects.get(reference=reference).updated_at < timezone.now() - timedelta(seconds=STUCK_AFTER_SECONDS)
        ),
        timeout=STUCK_AFTER_SECONDS + 10,
    )


@pytest.fixture
def shop(transactional_db, tmp_path, settings, held_pipeline) -> Iterator[Shop]:
    """The shop's processes on this test's database; all stopped (or killed) afterwards.

    The test process holds its pipeline (conftest's `held_pipeline`): it enqueues onto the
    same ORM queue as the processes it starts, not inline, so that what it queues (a sweep,
    a nudge) is run by the cluster as in production.
    """
    from django_q.conf import Conf

    settings.ORDER_STUCK_AFTER_SECONDS = STUCK_AFTER_SECONDS
    shop = Shop(tmp_path, cluster_name=Conf.CLUSTER_NAME)
    try:
        yield shop
    finally:
        shop.stop_all()
        print(shop.logs())  # pytest shows it when the test failed
