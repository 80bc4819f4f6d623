"""The production-like stack the benchmark runs against, all on loopback.

A fresh PostgreSQL database, gunicorn serving config.wsgi, a django-q2 cluster on the Redis
or the ORM broker, the simulated gateway, receipts to local files and email to the file
backend. Every process is started here, in its own session, and stopped here by its own
process id. What the processes cost is measured by bench/meters.py.
"""

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.procfs import children, cluster_processes

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
REDIS_BASE = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
# Named per run, so two runs on one machine (a developer's and CI's) never share a queue.
CLUSTER_NAME = os.environ.get("BENCH_CLUSTER_NAME", f"h_bench_{os.getpid()}")


# The load of a benchmark or a test comes from one address: the abuse limits must not be what
# is measured (the tests' processes take these too, tests/support/processes.py).
LIFTED_ABUSE_LIMITS = {
    "THROTTLE_ORDER_PLACEMENT_PER_ADDRESS": "100000000/min",
    "THROTTLE_ORDER_PLACEMENT_PER_EMAIL": "100000000/min",
    "THROTTLE_ORDER_LOOKUP": "100000000/min",
    "HELD_UNITS_PER_CLIENT": "100000000",
    "SHOP_MAX_UNPAID_SHARE": "1",
    "SHOP_HOLD_LAPSE_WAIT_SECONDS": "0",
    "FAILURE_EMAILS_PER_ADDRESS_PER_HOUR": "100000000",
}


class BenchError(RuntimeError):
    """The harness itself broke: a process did not start, an order stalled, an invariant failed."""


def stack_env(db_name: str, workdir: Path, broker: str) -> dict[str, str]:
    """The environment of every process of the stack: production settings, loopback only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "Q_", "DATABASE_", "REDIS_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=os.environ.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=f"{PG_URL}/{db_name}",
        VAR_DIR=str(workdir),
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(workdir / "emails"),
        PAYMENT_GATEWAY="simulated",
        **LIFTED_ABUSE_LIMITS,
        # The framework's floor beside the accepting request (config/framework_floor.py).
        FRAMEWORK_FLOOR_ENDPOINT="1",
        # wrk names its shoppers' addresses in X-Forwarded-For, as nginx does in production.
        TRUSTED_PROXY_COUNT="1",
        Q_CLUSTER_NAME=CLUSTER_NAME,
        LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("AWS_STORAGE_BUCKET_NAME", None)
    env.pop("EMAIL_HOST", None)
    if broker == "redis":
        env["REDIS_URL"] = REDIS_BASE
    return env


def psql(sql: str, db: str = "postgres") -> str:
    """Run SQL through psql against the local server; the output, or BenchError."""
    done = subprocess.run(
        ["psql", f"{PG_URL}/{db}", "-v", "ON_ERROR_STOP=1", "-Atqc", sql], capture_output=True, text=True
    )
    if done.returncode:
        raise BenchError(f"psql failed: {done.stderr.strip()}")
    return done.stdout.strip()


def recreate_database(name: str) -> None:
    psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM to this process's own group (it was started in a new session), then SIGKILL."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        # Anything of the group left behind (a cluster worker mid-task) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)


def find_cluster_processes(cluster: Proc | None) -> dict[str, list[int]]:
    """Worker and other (sentinel, pusher, monitor) pids of a running cluster."""
    if not (cluster and cluster.alive()):
        return {"cluster": [], "cluster_other": []}
    return cluster_processes(cluster.pid)


@dataclass
class Stack:
    env: dict[str, str]
    workdir: Path
    web: Proc | None = None
    cluster: Proc | None = None
    port: int = 0
    web_config: dict = field(default_factory=dict)

    def manage(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode:
            raise BenchError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def run_json_module(self, *args: str, what: str, timeout: float = 600) -> dict:
        """Run `python -m <args>` with the stack's environment; the JSON of its `BENCH_JSON {...}` line."""
        done = subprocess.run(
            [sys.executable, "-m", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        match = re.search(r"^BENCH_JSON (\{.*\})$", done.stdout, re.M)
        if done.returncode or not match:
            raise BenchError(f"{what} failed:\n{done.stdout[-1500:]}\n{done.stderr[-3000:]}")
        return json.loads(match.group(1))

    def _spawn(self, name: str, cmd: list[str], **kwargs) -> Proc:
        log = self.workdir / f"{name}.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen(
                cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
            )
        return Proc(name, popen, log)

    def start_web(self, workers: int, threads: int) -> None:
        """gunicorn on a loopback socket bound here (port 0), handed over as a file descriptor."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(2048)
        self.port = listener.getsockname()[1]
        cmd = [
            str(VENV_BIN / "gunicorn"),
            "config.wsgi",
            "--bind",
            f"fd://{listener.fileno()}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--worker-class",
            "gthread" if threads > 1 else "sync",
            "--backlog",
            "2048",
            "--timeout",
            "60",
            "--keep-alive",
            "5",
            "--log-level",
            "warning",
        ]
        self.web = self._spawn("gunicorn", cmd, pass_fds=[listener.fileno()])
        listener.close()
        self.web_config = {"server": "gunicorn", "workers": workers, "threads": threads}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not self.web.alive():
                raise BenchError(f"gunicorn exited:\n{self.web.tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/products/?limit=1", timeout=5) as answer:
                    if answer.status == 200 and len(children(self.web.pid)) >= workers:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise BenchError(f"gunicorn did not answer within 60 s:\n{self.web.tail()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop_web(self) -> None:
        if self.web:
            self.web.stop()
            self.web = None

    def start_cluster(self, workers: int) -> None:
        env = dict(self.env, Q_WORKERS=str(workers))
        log = self.workdir / "qcluster.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.cluster = Proc("qcluster", popen, log)
        # Ready when its workers exist; the first order through it proves the rest.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not self.cluster.alive():
                raise BenchError(f"qcluster exited:\n{self.cluster.tail()}")
            if len(find_cluster_processes(self.cluster)["cluster"]) >= workers:
                return
            time.sleep(0.2)
        raise BenchError(f"qcluster workers did not start within 60 s:\n{self.cluster.tail()}")

    def stop_cluster(self) -> None:
        if self.cluster:
            self.cluster.stop(timeout=30)
            self.cluster = None

    def close(self) -> None:
        self.stop_cluster()
        self.stop_web()


NGINX_PROXY_SNIPPET = ROOT / "deploy" / "nginx" / "shop-proxy.conf"


def write_nginx_conf(prefix: Path, port: int, shop_port: int, backoffice_port: int) -> Path:
    """An nginx.conf in `prefix` listening on 127.0.0.1:`port` with the shipped proxy settings,
    its `shop` and `backoffice` upstreams the gunicorn pools at those loopback ports (the tests'
    nginx and bench/backoffice_capacity.py run it with `nginx -p prefix -c <it>`)."""
    prefix.mkdir(parents=True, exist_ok=True)
    user = "user root;" if os.geteuid() == 0 else ""  # as deploy/nginx/local-entrypoint says why
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""{user}
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    upstream shop {{ server 127.0.0.1:{shop_port}; keepalive 16; }}
    upstream backoffice {{ server 127.0.0.1:{backoffice_port}; keepalive 4; }}
    server {{
        listen 127.0.0.1:{port};
        include {NGINX_PROXY_SNIPPET};
    }}
}}
"""
    )
    return conf


def clean_workdir(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
    # The API serves no static files; an empty STATIC_ROOT keeps WhiteNoise from warning.
    (path / "staticfiles").mkdir(parents=True)


def run_in_process_on_fresh_database(name: str, broker: str, module_args: list[str], *, what: str) -> dict:
    """`python -m <module_args> --child` with the stack's settings (and Django's test client's
    host allowed) on a fresh database of the bench's catalog, dropped afterwards; the JSON of
    its `BENCH_JSON` line. For the in-process measures (bench/accept_inprocess.py,
    bench/middleware_cost.py), which set Django up in the child with these settings."""
    from bench.database import Db

    db_name = f"orders_bench_{name}_{os.getpid()}"
    workdir = ROOT / "var" / f"bench-{name}-{os.getpid()}"
    clean_workdir(workdir)
    recreate_database(db_name)
    env = stack_env(db_name, workdir, broker)
    env["DJANGO_ALLOWED_HOSTS"] += ",testserver"
    stack = Stack(env=env, workdir=workdir)
    try:
        stack.manage("migrate", "--noinput")
        db = Db(db_name)
        db.seed()
        db.reset()
        db.purge_queue(broker)
        result = stack.run_json_module(*module_args, "--child", what=what, timeout=1800)
        db.purge_queue(broker)
        db.conn.close()
    finally:
        drop_database(db_name)
    shutil.rmtree(workdir, ignore_errors=True)
    return result
