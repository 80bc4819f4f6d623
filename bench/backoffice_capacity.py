"""Shoppers' latency while the back office works hard: five slow admin requests (exports of
about 100,000 orders, the monitoring page over 1,000,000) while shoppers order, through
nginx with the shipped proxy settings (deploy/nginx/shop-proxy.conf).

Run by bench/run.py (`measure_backoffice_capacity`) after the other scenarios, or on its own
on a database of its own:

    python -m bench.backoffice_capacity                 # 1,000,000 orders of history
    BENCH_QUICK=1 python -m bench.backoffice_capacity   # 10,000: proves the harness

The history is seeded as bench/monitoring_page.py seeds it. Two gunicorn pools as `make run`
and the image run them (the shop's: 3 sync workers; the back office's: 2, 300 s a request)
and nginx in front. wrk posts orders at a fixed rate (bench/orders.lua) three times:
  idle       no admin request;
  separate   five managers each asking, again and again, for an export or the monitoring
             page, routed to the back office's pool (the shipped routing);
  one pool   the same, nginx sending /admin/ to the shop's pool too (the routing before).
Each is repeated (BENCH_REPEATS, 3; 1 in the quick plan) and the run of median p99 kept. It
prints the shoppers' p99 of each and the ratio to idle (the target: within 2x).
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import requests

from bench.log import log
from bench.plan import Plan, quick_from_env
from bench.stack import (
    ROOT,
    VENV_BIN,
    BenchError,
    Stack,
    clean_workdir,
    drop_database,
    recreate_database,
    stack_env,
    write_nginx_conf,
)

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MANAGERS = 5  # slow admin requests in flight at once: more than the back office's 2 workers
EXPORTS = 3  # of the five, the rest ask for the monitoring page
EXPORT_ORDERS = 100_000
PASSWORD = "bench-manager-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_pool(stack: Stack, name: str, port: int, workers: int, timeout: int) -> subprocess.Popen:
    """One gunicorn pool as the Procfile runs it (sync workers), on 127.0.0.1:port."""
    log_path = stack.workdir / f"{name}.log"
    with open(log_path, "ab") as out:
        return subprocess.Popen(
            [
                str(VENV_BIN / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}",
                "--workers", str(workers), "--timeout", str(timeout), "--backlog", "2048",
                "--log-level", "warning", "--no-control-socket",
            ],
            cwd=ROOT, env=stack.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def start_nginx(workdir: Path, port: int, shop_port: int, backoffice_port: int) -> subprocess.Popen:
    """nginx on `port` with the shipped proxy settings, its two upstreams at the ports given."""
    prefix = workdir / f"nginx-{backoffice_port}"
    conf = write_nginx_conf(prefix, port, shop_port, backoffice_port)
    return subprocess.Popen(
        [NGINX, "-e", "stderr", "-p", str(prefix), "-c", str(conf)],
        stdout=subprocess.DEVNULL, stderr=open(prefix / "out.log", "ab"), start_new_session=True,
    )  # fmt: skip


def wait_for(url: str, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise BenchError(f"{what} did not answer {url} within {timeout} s")


def stop(popen: subprocess.Popen) -> None:
    """SIGTERM to the process's own group, then SIGKILL whatever is left."""
    with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(popen.pid, signal.SIGTERM)
        popen.wait(20)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)
    popen.wait()


def log_in(front: str) -> requests.Session:
    """A manager's session, logged in through the admin's login form."""
    session = requests.Session()
    session.get(f"{front}/admin/login/", timeout=60)
    answer = session.post(
        f"{front}/admin/login/?next=/admin/",
        data={
            "username": "bench-manager",
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies.get("csrftoken", ""),
        },
        headers={"Referer": f"{front}/admin/login/"},
        allow_redirects=False,
        timeout=60,
    )
    if answer.status_code != 302:
        raise BenchError(f"the manager could not log in: {answer.status_code}")
    return session


def export_since(db, orders: int) -> str:
    """The first day from which the export holds about `orders` orders (the newest ones)."""
    row = db.one("SELECT created_at FROM orders_order ORDER BY created_at DESC OFFSET %s LIMIT 1", orders)
    if not row:
        return ""
    return (row[0] + timedelta(days=1)).date().isoformat()


class Managers:
    """MANAGERS threads, each asking for its slow page again and again until stopped."""

    def __init__(self, front: str, since: str):
        self.front, self.since = front, since
        self.stop = threading.Event()
        self.answers: list[tuple[str, int, float, int]] = []  # page, status, seconds, bytes
        self.threads = [threading.Thread(target=self._ask, args=(n,), daemon=True) for n in range(MANAGERS)]

    def _ask(self, n: int) -> None:
        session = log_in(self.front)
        if n < EXPORTS:
            page, url = "export", f"{self.front}/admin/orders/order/export.csv"
            if self.since:
                url += f"?created_at__gte={self.since}"
        else:
            page, url = "monitoring", f"{self.front}/admin/monitoring/"
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                answer = session.get(url, timeout=600)
                self.answers.append((page, answer.status_code, time.monotonic() - started, len(answer.content)))
            except requests.RequestException:
                self.answers.append((page, 0, time.monotonic() - started, 0))

    def __enter__(self) -> "Managers":
        for thread in self.threads:
            thread.start()
        time.sleep(2)  # every manager's request is in before the shoppers come
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=600)

    def summary(self) -> dict:
        by_page: dict[str, dict] = {}
        for page, status, seconds, size in self.answers:
            entry = by_page.setdefault(page, {"answered": 0, "failed": 0, "seconds": [], "bytes": 0})
            entry["answered" if status == 200 else "failed"] += 1
            entry["seconds"].append(round(seconds, 1))
            entry["bytes"] = max(entry["bytes"], size)
        return by_page


def shoppers(front: str, plan: Plan, rate: float) -> dict:
    """wrk posting orders at `rate` for the plan's time, `plan.repeats` times: the run of median p99."""
    from bench.load_tools import run_wrk
    from bench.scenarios import pick_median_run

    runs = [
        run_wrk(front, connections=8, seconds=plan.backoffice_seconds, env={"BENCH_RATE": str(rate)})
        for _ in range(plan.repeats)
    ]
    # A run in which no shopper got an answer (wrk's 10 s timeout) has no p99: it is the worst.
    for run in runs:
        run["sort_p99"] = run["p99_ms"] if run["accepted"] else float("inf")
    chosen = pick_median_run(runs, "sort_p99")
    chosen["repeats"] = [run["p99_ms"] if run["accepted"] else None for run in runs]
    chosen["unanswered_runs"] = sum(1 for run in runs if not run["accepted"])
    chosen.pop("sort_p99")
    if not chosen["accepted"]:
        chosen["p99_ms"] = None
    return chosen


def measure(plan: Plan, db, stack: Stack) -> dict:
    """The three runs on a history of `plan.monitoring_orders` orders (seeded here, reset after)."""
    from bench import monitoring_page
    from bench.load_tools import run_wrk

    db.reset()
    seeded = monitoring_page.seed(db, plan.monitoring_orders)
    stack.manage("collectstatic", "--noinput", "--verbosity", "0", timeout=900)  # the admin's pages link their CSS
    subprocess.run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput", "--username", "bench-manager",
         "--email", "bench@shop.example"],
        cwd=ROOT, env={**stack.env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD}, check=True, capture_output=True,
    )  # fmt: skip
    since = export_since(db, EXPORT_ORDERS)
    (exported,) = db.one("SELECT count(*) FROM orders_order WHERE created_at >= %s::date", since or "1970-01-01")
    rate = float(os.environ.get("BENCH_BACKOFFICE_RATE", "10"))
    shop_port, backoffice_port = free_port(), free_port()
    processes = [
        start_pool(stack, "shop-pool", shop_port, workers=3, timeout=30),
        start_pool(stack, "backoffice-pool", backoffice_port, workers=2, timeout=300),
    ]
    result: dict = {**seeded, "rate_per_s": rate, "managers": MANAGERS, "export_orders": exported}
    try:
        wait_for(f"http://127.0.0.1:{shop_port}/health/live", "the shop's pool")
        wait_for(f"http://127.0.0.1:{backoffice_port}/health/live", "the back office's pool")
        for routing, upstream in (("separate", backoffice_port), ("one_pool", shop_port)):
            port = free_port()
            nginx = start_nginx(stack.workdir, port, shop_port, upstream)
            try:
                front = f"http://127.0.0.1:{port}"
                wait_for(f"{front}/health/live", "nginx")
                run_wrk(front, connections=8, seconds=3)  # warm every worker
                if routing == "separate":
                    result["idle"] = shoppers(front, plan, rate)
                    log(f"back office: shoppers idle p99 {result['idle']['p99_ms']} ms at {rate}/s")
                with Managers(front, since) as managers:
                    loaded = shoppers(front, plan, rate)
                loaded["admin"] = managers.summary()
                if loaded["p99_ms"] is not None and result["idle"]["p99_ms"]:
                    loaded["p99_over_idle"] = round(loaded["p99_ms"] / result["idle"]["p99_ms"], 2)
                else:
                    loaded["p99_over_idle"] = None  # the shoppers were not answered at all
                result[routing] = loaded
                log(
                    f"back office ({routing}): shoppers p99 {loaded['p99_ms']} ms, {loaded['p99_over_idle']}x idle, "
                    f"runs with no answer {loaded['unanswered_runs']}/{plan.repeats}; "
                    f"admin {json.dumps({k: (v['answered'], v['failed']) for k, v in loaded['admin'].items()})}"
                )
            finally:
                stop(nginx)
    finally:
        for process in processes:
            stop(process)
        db.reset()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=quick_from_env())
    args = parser.parse_args(argv)
    plan = Plan.for_mode(args.quick, ["orm"])
    from bench.database import Db

    db_name = f"orders_bench_backoffice_{os.getpid()}"
    workdir = ROOT / "var" / f"bench-backoffice-{os.getpid()}"
    clean_workdir(workdir)
    recreate_database(db_name)
    try:
        stack = Stack(env=stack_env(db_name, workdir, "orm"), workdir=workdir)
        stack.manage("migrate", "--noinput")
        db = Db(db_name)
        try:
            db.seed()
            print(json.dumps(measure(plan, db, stack), indent=2))
        finally:
            db.conn.close()
    finally:
        drop_database(db_name)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"bench: FAILED: {error}", file=sys.stderr)
        sys.exit(1)
