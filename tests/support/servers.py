"""Private database servers for the tests that restart, stop or cut them off.

A fault test must never touch the machine's shared PostgreSQL (5432) or Redis (6379): other
tests, and other projects' sessions, run on them. `PrivatePostgres` is a cluster made by
initdb in the test's own folder on a free port; `PrivateRedis` is a redis-server of its own.
Each can be stopped, started again on the same port with the same data, or killed, and is
always stopped when its fixture ends. Both listen on the address given (loopback by default;
the two-host test gives its bridge address).
"""

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.waiting import wait_until

START_TIMEOUT = 60


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _accepts_connections(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def _postgres_bin(name: str) -> str:
    """A PostgreSQL server program: Debian keeps them out of PATH, under /usr/lib/postgresql/<major>/bin."""
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    if found := shutil.which(name):
        return found
    pytest.fail(f"{name} not found: install postgresql (system-packages.txt)")


def _as_postgres_user() -> dict:
    """Run a server as the `postgres` user when the tests run as root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return {}
    user = pwd.getpwnam("postgres")
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own: trust auth, user `postgres`, one port."""

    def __init__(self, directory: Path, *, host: str = "127.0.0.1", port: int | None = None):
        self.dir = directory
        self.data = directory / "data"
        self.log_path = directory / "postgres.log"
        self.host = host
        self.port = port or free_port(host)
        self._process: subprocess.Popen | None = None
        directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        subprocess.run(
            [_postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync"],
            check=True,
            capture_output=True,
            **_as_postgres_user(),
        )
        # Speed over surviving a power cut (no fsync); a crash of the server itself still keeps
        # every commit (the OS holds its WAL). Room for two hosts' processes.
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("fsync = off\nfull_page_writes = off\nmax_connections = 200\n")
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write("host all all 0.0.0.0/0 trust\n")

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@{self.host}:{self.port}/{database}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The server's own process (the benchmark follows its CPU), None before a start."""
        return self._process.pid if self._process else None

    def start(self) -> None:
        """Start the server (again) on its port and wait until it accepts connections."""
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [
                _postgres_bin("postgres"), "-D", str(self.data),
                "-p", str(self.port), "-h", self.host, "-k", str(self.dir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **_as_postgres_user(),
        )  # fmt: skip
        log.close()
        wait_until(
            lambda: self._ready(),
            timeout=START_TIMEOUT,
            message=lambda: f"private PostgreSQL on {self.port} did not start:\n{self.log()}",
        )

    def _ready(self) -> bool:
        if self._process is None or self._process.poll() is not None:
            raise AssertionError(f"private PostgreSQL exited:\n{self.log()}")
        result = subprocess.run(
            ["pg_isready", "-q", "-h", self.host, "-p", str(self.port)], capture_output=True, check=False
        )
        return result.returncode == 0

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server: `fast` (SIGINT: sessions cut, clean shutdown) or `immediate` (SIGQUIT: a crash)."""
        if not self.running:
            return
        self._process.send_signal({"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode])
        try:
            self._process.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=START_TIMEOUT)

    def restart(self, *, mode: str = "fast") -> None:
        self.stop(mode=mode)
        self.start()

    def create_database(self, name: str) -> str:
        """Create a database on this server; returns its URL."""
        subprocess.run(
            ["psql", "-q", "-h", self.host, "-p", str(self.port), "-U", "postgres", "-c", f'CREATE DATABASE "{name}"'],
            check=True,
            capture_output=True,
        )
        return self.url(name)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


class PrivateRedis:
    """A redis-server of the test's own, keeping nothing on disk unless asked (`appendonly`)."""

    def __init__(self, directory: Path, *, host: str = "127.0.0.1", port: int | None = None, appendonly: bool = False):
        self.dir = directory
        self.host = host
        self.port = port or free_port(host)
        self.appendonly = appendonly
        self.log_path = directory / "redis.log"
        self._process: subprocess.Popen | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The server's own process (the benchmark follows its CPU), None before a start."""
        return self._process.pid if self._process else None

    def start(self) -> None:
        """Start the server (again) on its port and wait until it answers."""
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--bind", self.host, "--port", str(self.port), "--dir", str(self.dir),
                "--save", "", "--appendonly", "yes" if self.appendonly else "no",
                # Without a password Redis answers loopback only; the two-host test's hosts
                # reach it over their bridge (a private network of this machine).
                "--protected-mode", "yes" if self.host.startswith("127.") else "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        log.close()

        def answering() -> bool:
            if self._process.poll() is not None:
                raise AssertionError(f"private redis-server exited:\n{self.log()}")
            return _accepts_connections(self.host, self.port)

        wait_until(answering, timeout=START_TIMEOUT, message=lambda: f"redis-server did not start:\n{self.log()}")

    def stop(self) -> None:
        """SIGKILL: what a crashed or restarted Redis does to what it held in memory only."""
        if not self.running:
            return
        self._process.kill()
        self._process.wait(timeout=START_TIMEOUT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


@contextlib.contextmanager
def server_directory(what: str) -> Iterator[Path]:
    """A folder for a private server, removed afterwards.

    Not under pytest's tmp_path: that lies in root's 0700 folder, where the `postgres` user
    a server runs as cannot reach its own files.
    """
    directory = Path(tempfile.mkdtemp(prefix=f"orders-{what}-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started PostgreSQL of this test's own, stopped afterwards."""
    with server_directory("postgres") as directory:
        server = PrivatePostgres(directory)
        server.start()
        yield server
        server.stop(mode="immediate")


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    """A started redis-server of this test's own, stopped afterwards."""
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()
