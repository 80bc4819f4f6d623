"""`make bench`: the order path against this machine's own limits.

Brings up the stack of bench/stack.py on a fresh database, measures the scenarios of
BENCHMARKS.md against the ceilings measured in the same run (pgbench on the same
PostgreSQL, the receipt renderer alone), writes bench/results/<timestamp>.json and, in the
full mode, refreshes the generated part of BENCHMARKS.md.

    python -m bench.run            # full run (about half an hour)
    python -m bench.run --quick    # a few seconds per scenario: proves the harness works

Timings are reported, never asserted. The run fails (non-zero exit) only when the harness
or the system breaks: a process that does not start, no order accepted, an order that never
finishes, more units sold than were in stock.
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench import report
from bench.meters import CpuMeter, MemorySampler
from bench.order_states import FAILURE_EMAIL_STATES, FINAL_STATES
from bench.procfs import cpu_seconds, machine_busy_seconds
from bench.stack import (
    CLUSTER_NAME,
    PG_URL,
    REDIS_BASE,
    ROOT,
    BenchError,
    Stack,
    clean_workdir,
    drop_database,
    psql,
    recreate_database,
    stack_env,
)

BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
PRODUCTS = 1000
HOT_SKU = "BENCH-HOT"
PLENTY = 10_000_000  # units per product: the random-product runs never run out


@dataclass
class Plan:
    """How much of everything one run does."""

    quick: bool
    brokers: list[str]
    repeats: int = 3
    pgbench_clients: list[int] = field(default_factory=lambda: [8, 32])
    pgbench_seconds: int = 10
    concurrencies: list[int] = field(default_factory=lambda: [8, 32, 128])
    accept_seconds: int = 10
    receipt_renders: int = 30
    idle_orders: int = 7
    saturate_seconds: int = 10
    e2e_seconds: int = 20
    sustained_fraction: float = 0.6
    hot_stock: int = 1000
    hot_seconds: float = 10
    soak_orders: int = 10_000
    web_workers: int = int(os.environ.get("BENCH_WEB_WORKERS", "3"))
    web_threads: int = int(os.environ.get("BENCH_WEB_THREADS", "1"))
    cluster_workers: int = int(os.environ.get("BENCH_CLUSTER_WORKERS", "2"))
    settle_timeout: float = 900

    @classmethod
    def for_mode(cls, quick: bool, brokers: list[str]) -> "Plan":
        if not quick:
            plan = cls(quick=False, brokers=brokers)
            plan.repeats = int(os.environ.get("BENCH_REPEATS", plan.repeats))
            plan.soak_orders = int(os.environ.get("BENCH_SOAK_ORDERS", plan.soak_orders))
            return plan
        return cls(
            quick=True,
            brokers=brokers,
            repeats=1,
            pgbench_clients=[8],
            pgbench_seconds=2,
            accept_seconds=2,
            receipt_renders=3,
            idle_orders=2,
            saturate_seconds=2,
            e2e_seconds=3,
            hot_stock=10,
            hot_seconds=2,
            soak_orders=0,
            settle_timeout=120,
        )


# --- the database -----------------------------------------------------------------------


class Db:
    """A direct connection to the run's database, for seeding, resetting and reading results."""

    def __init__(self, name: str):
        self.name = name
        self.conn = psycopg.connect(f"{PG_URL}/{name}", autocommit=True, application_name="bench-driver")

    def one(self, sql: str, *params):
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone()

    def all(self, sql: str, *params) -> list:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    def run(self, sql: str, *params) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)

    def seed(self) -> dict[str, int]:
        """1,000 products with plenty of stock, and one hot product; ids for pgbench."""
        self.run(
            """
            INSERT INTO inventory_product (sku, name, price, currency, active, created_at)
            SELECT format('BENCH-%%s', lpad(n::text, 4, '0')), format('Bench product %%s', n),
                   (5 + n %% 50)::numeric + 0.99, 'USD', true, now()
            FROM generate_series(1, %s) AS n
            """,
            PRODUCTS,
        )
        self.run(
            "INSERT INTO inventory_product (sku, name, price, currency, active, created_at) "
            "VALUES (%s, 'The hot product', 19.99, 'USD', true, now())",
            HOT_SKU,
        )
        self.run("INSERT INTO inventory_stock (product_id, on_hand, reserved) SELECT id, 0, 0 FROM inventory_product")
        low, high = self.one("SELECT min(id), max(id) FROM inventory_product WHERE sku <> %s", HOT_SKU)
        (hot,) = self.one("SELECT id FROM inventory_product WHERE sku = %s", HOT_SKU)
        return {"pmin": low, "pmax": high, "hot": hot}

    def reset(self, hot_stock: int = PLENTY) -> None:
        """No orders, fresh stock through the ledger, empty task tables."""
        self.run(
            "TRUNCATE orders_order, orders_orderline, orders_orderevent, orders_notification, payments_payment, "
            "payments_simulatedpaymentintent, receipts_receipt, inventory_stockmovement, django_q_ormq, "
            "django_q_task RESTART IDENTITY CASCADE"
        )
        self.run(
            "UPDATE inventory_stock s SET reserved = 0, on_hand = CASE WHEN p.sku = %s THEN %s ELSE %s END "
            "FROM inventory_product p WHERE p.id = s.product_id",
            HOT_SKU,
            hot_stock,
            PLENTY,
        )
        self.run(
            "INSERT INTO inventory_stockmovement (product_id, quantity, reason, note, created_at) "
            "SELECT product_id, on_hand, 'import', 'bench', now() FROM inventory_stock WHERE on_hand > 0"
        )
        self.run("VACUUM ANALYZE")

    def backend_pids(self) -> list[int]:
        """Server processes of the stack's connections to this database (not this driver's)."""
        rows = self.all(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND coalesce(application_name, '') <> 'bench-driver'"
        )
        return [pid for (pid,) in rows]

    def wait_for_trailing_accepts(self, timeout: float = 30) -> int:
        """Wait until no more orders arrive: when wrk stops, requests it already sent may
        still sit in the server's listen backlog and be served after it has gone."""
        last, steady, started = -1, 0, time.monotonic()
        while steady < 3 and time.monotonic() - started < timeout:
            (count,) = self.one("SELECT count(*) FROM orders_order")
            steady = steady + 1 if count == last else 0
            last = count
            time.sleep(0.2)
        return last

    def queue_size(self, broker: str) -> int:
        if broker == "redis":
            import redis

            return redis.from_url(REDIS_BASE).llen(f"django_q:{CLUSTER_NAME}:q")
        return self.one("SELECT count(*) FROM django_q_ormq WHERE key = %s", CLUSTER_NAME)[0]

    def unsettled(self) -> int:
        """Orders not yet final, plus failure emails still to go: work the pipeline has left."""
        (open_orders,) = self.one("SELECT count(*) FROM orders_order WHERE state <> ALL(%s)", FINAL_STATES)
        (unnotified,) = self.one(
            """
            SELECT count(*) FROM orders_order o WHERE o.state = ANY(%s)
            AND NOT EXISTS (SELECT 1 FROM orders_notification n
                            WHERE n.order_id = o.id AND n.kind = 'failure' AND n.status = 'sent')
            """,
            FAILURE_EMAIL_STATES,
        )
        return open_orders + unnotified

    def wait_settled(self, broker: str, timeout: float) -> float:
        """Wait until every order is final and the queue is empty; the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.unsettled() == 0 and self.queue_size(broker) == 0:
                return time.monotonic() - started
            time.sleep(0.1)
        states = self.all("SELECT state, count(*) FROM orders_order GROUP BY state")
        raise BenchError(f"orders did not settle within {timeout:.0f} s: {states}, queue {self.queue_size(broker)}")

    def failed_tasks(self) -> dict:
        """Tasks that raised (django-q2 keeps only those): how many, and a few of their errors."""
        rows = self.all("SELECT name, left(result, 300) FROM django_q_task WHERE NOT success ORDER BY started LIMIT 3")
        (count,) = self.one("SELECT count(*) FROM django_q_task WHERE NOT success")
        return {"count": count, "sample": [f"{name}: {error}" for name, error in rows]}

    def e2e_stats(self) -> dict:
        """Accept -> COMPLETED from the database's own timestamps."""
        row = self.one(
            """
            SELECT count(*),
                   extract(epoch FROM max(completed_at) - min(created_at)),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at)),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at)),
                   max(extract(epoch FROM completed_at - created_at))
            FROM orders_order WHERE state = 'COMPLETED'
            """
        )
        (total,) = self.one("SELECT count(*) FROM orders_order")
        completed, span, p50, p99, worst = row
        return {
            "orders": total,
            "completed": completed,
            "not_completed": total - completed,
            "span_s": round(float(span or 0), 3),
            "completed_per_s": round(completed / float(span), 2) if span else 0.0,
            "p50_ms": round(float(p50 or 0) * 1000, 1),
            "p99_ms": round(float(p99 or 0) * 1000, 1),
            "max_ms": round(float(worst or 0) * 1000, 1),
        }


def wait_for_database(db: "Db", sql: str, timeout: float, *params):
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        row = db.one(sql, *params)
        if row and row[0] is not None:
            return row
        time.sleep(0.005)
    raise BenchError(f"timed out after {timeout:.0f} s waiting for: {sql.strip()[:80]} {params}")


# --- load tools ---------------------------------------------------------------------------


def run_wrk(url: str, *, connections: int, seconds: float, env: dict[str, str] | None = None, threads: int = 2) -> dict:
    """One wrk run of bench/orders.lua; its summary plus its own CPU use and the machine's."""
    threads = min(threads, connections)
    wrk_env = dict(os.environ, BENCH_THREADS=str(threads), BENCH_RUN_ID=uuid.uuid4().hex[:12], **(env or {}))
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(BENCH_DIR / "orders.lua"),
        url,
    ]
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-wrk-{os.getpid()}.out"
    with open(out_path, "w+") as out:
        busy_before, started = machine_busy_seconds(), time.monotonic()
        popen = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=wrk_env)
        # wait4 hands back the child's own rusage: the load tool's CPU, measured exactly.
        _, status, usage = os.wait4(popen.pid, 0)
        popen.returncode = os.waitstatus_to_exitcode(status)
        wall, busy = time.monotonic() - started, machine_busy_seconds() - busy_before
        out.seek(0)
        text = out.read()
    out_path.unlink(missing_ok=True)
    match = re.search(r"^BENCH_JSON (\{.*\})$", text, re.M)
    if popen.returncode or not match:
        raise BenchError(f"wrk failed ({popen.returncode}): {' '.join(cmd)}\n{text[-2000:]}")
    summary = json.loads(match.group(1))
    wrk_cpu = usage.ru_utime + usage.ru_stime
    duration = summary["duration_us"] / 1e6
    ok = summary["requests"] - summary["status_errors"]
    socket_errors = sum(summary[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return {
        "connections": connections,
        "threads": threads,
        "seconds": round(duration, 2),
        "requests": summary["requests"],
        "accepted": ok,
        "accepted_per_s": round(ok / duration, 1) if duration else 0.0,
        "errors": summary["status_errors"] + socket_errors,
        "status_errors": summary["status_errors"],
        "socket_errors": socket_errors,
        "p50_ms": round(summary["p50_us"] / 1000, 2),
        "p95_ms": round(summary["p95_us"] / 1000, 2),
        "p99_ms": round(summary["p99_us"] / 1000, 2),
        "max_ms": round(summary["max_us"] / 1000, 2),
        "wrk_cpu_s": round(wrk_cpu, 3),
        "wrk_core_share": round(wrk_cpu / wall, 3),
        "wrk_machine_share": round(wrk_cpu / busy, 3) if busy else 0.0,
        "machine_busy_share": round(busy / (wall * os.cpu_count()), 3),
        "error_sample": [line for line in text.splitlines() if line.startswith("BENCH_ERROR")][:3],
    }


def run_pgbench(db_name: str, ids: dict[str, int], *, clients: int, seconds: int, hot: bool) -> dict:
    defines = ["-D", f"pmin={ids['hot'] if hot else ids['pmin']}", "-D", f"pmax={ids['hot'] if hot else ids['pmax']}"]
    cmd = [
        "pgbench",
        "-n",
        "-c",
        str(clients),
        "-j",
        str(min(clients, os.cpu_count() or 1)),
        "-T",
        str(seconds),
        "-f",
        str(BENCH_DIR / "reserve.sql"),
        *defines,
        "-h",
        "127.0.0.1",
        "-U",
        "postgres",
        db_name,
    ]
    watcher = BackendCpu(db_name)
    busy_before, started = machine_busy_seconds(), time.monotonic()
    popen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    text = popen.stdout.read()
    _, status, usage = os.wait4(popen.pid, 0)
    popen.returncode = os.waitstatus_to_exitcode(status)
    wall, busy = time.monotonic() - started, machine_busy_seconds() - busy_before
    backends_cpu = watcher.stop()
    tps = re.search(r"^tps = ([\d.]+)", text, re.M)
    latency = re.search(r"^latency average = ([\d.]+) ms", text, re.M)
    failed = re.search(r"^number of failed transactions: (\d+)", text, re.M)
    processed = re.search(r"^number of transactions actually processed: (\d+)", text, re.M)
    if popen.returncode or not tps or not processed:
        raise BenchError(f"pgbench failed ({popen.returncode}): {' '.join(cmd)}\n{text[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    transactions = int(processed.group(1))
    return {
        "clients": clients,
        "tps": round(float(tps.group(1)), 1),
        "transactions": transactions,
        "latency_avg_ms": float(latency.group(1)) if latency else None,
        "failed": int(failed.group(1)) if failed else 0,
        "pgbench_core_share": round(cpu / wall, 3),
        "pgbench_machine_share": round(cpu / busy, 3) if busy else 0.0,
        # The server's and the client's CPU per transaction: the ceiling with the noise of a
        # shared machine taken out (a backend's last fraction of a second may be missed).
        "cpu_ms_per_txn": {
            "postgres": round(1000 * backends_cpu / transactions, 3),
            "pgbench": round(1000 * cpu / transactions, 3),
        },
        "others_share": round(max(0.0, busy - cpu - backends_cpu) / busy, 3) if busy else 0.0,
    }


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
        return {pid: cpu_seconds(pid) for pid in self.db.backend_pids()}

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            for pid, cpu in self._read().items():
                self.seen[pid] = max(cpu, self.seen.get(pid, 0.0))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(2)
        self.db.conn.close()
        return sum(cpu - self.baseline.get(pid, 0.0) for pid, cpu in self.seen.items())


def place_one(url: str) -> str:
    """POST one order the way a shopper's client does; its reference."""
    body = json.dumps(
        {"email": "idle@example.com", "lines": [{"sku": "BENCH-0001", "quantity": 1}], "payment_method": "pm_card_visa"}
    ).encode()
    request = urllib.request.Request(
        f"{url}/api/orders/",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        if answer.status != 202:
            raise BenchError(f"placing an order answered {answer.status}")
        return json.loads(answer.read())["reference"]


def median_run(runs: list[dict], key: str) -> dict:
    """The run whose `key` is the median of the repeats (its other numbers come with it)."""
    ordered = sorted(runs, key=lambda run: run[key])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["repeats"] = [run[key] for run in runs]
    return chosen


# --- scenarios ----------------------------------------------------------------------------


@dataclass
class Ctx:
    """What every scenario of one broker's run works with."""

    plan: Plan
    stack: Stack
    db: Db
    broker: str
    sampler: MemorySampler
    meter: CpuMeter

    def measured(self, load: Callable[[], dict], orders: Callable[[dict], int]) -> dict:
        """Run `load` (which returns a wrk result) and say where the CPU went, per order."""
        before = self.meter.snapshot()
        result = load()
        after = self.meter.snapshot()
        result["cpu"] = CpuMeter.spent(before, after, load_tool=result["wrk_cpu_s"], orders=orders(result))
        return result


def pgbench_ceilings(plan: Plan, db: Db, db_name: str, ids: dict[str, int]) -> dict:
    """Scenario 4: the database's own ceiling for one order's reservation."""
    results = {}
    for hot in (False, True):
        per_clients = []
        for clients in plan.pgbench_clients:
            runs = []
            for _ in range(plan.repeats):
                db.reset(hot_stock=PLENTY)
                runs.append(run_pgbench(db_name, ids, clients=clients, seconds=plan.pgbench_seconds, hot=hot))
            per_clients.append(median_run(runs, "tps"))
        best = max(per_clients, key=lambda run: run["tps"])
        results["hot" if hot else "random"] = {"best": best, "by_clients": per_clients}
        log(f"pgbench {'hot' if hot else 'random'}: {best['tps']} tps ({best['clients']} clients)")
    db.reset()
    return results


def receipt_ceiling(plan: Plan, stack: Stack) -> dict:
    """Scenario 5: one receipt's render time and memory, and cores / render time."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.receipts", str(plan.receipt_renders)],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    match = re.search(r"^BENCH_JSON (\{.*\})$", done.stdout, re.M)
    if done.returncode or not match:
        raise BenchError(f"receipt benchmark failed:\n{done.stdout[-1500:]}\n{done.stderr[-3000:]}")
    result = json.loads(match.group(1))
    result["ceiling_per_s"] = round(os.cpu_count() / (result["median_ms"] / 1000), 1)
    log(f"receipts: median {result['median_ms']} ms, ceiling {result['ceiling_per_s']}/s")
    return result


def accept_scenarios(ctx: Ctx) -> dict:
    """Scenario 1: accepting orders alone (no cluster running), at fixed concurrencies."""
    plan, stack, db, broker, sampler = ctx.plan, ctx.stack, ctx.db, ctx.broker, ctx.sampler
    run_wrk(stack.url, connections=8, seconds=1)  # warm every worker up
    purge_queue(db, broker)
    db.reset()
    sampler.sample()
    rss_after_warmup = list(sampler.latest["web"])
    results, served = {}, 0
    for connections in plan.concurrencies:
        runs = []
        for _ in range(plan.repeats):
            run = ctx.measured(
                lambda c=connections: _then_trailing(
                    db, run_wrk(stack.url, connections=c, seconds=plan.accept_seconds)
                ),
                lambda run: db.one("SELECT count(*) FROM orders_order")[0],
            )
            (stored,) = db.one("SELECT count(*) FROM orders_order")
            run["orders_stored"] = stored
            if stored == 0 or stored < run["accepted"]:
                raise BenchError(f"accept at {connections} connections: {run}")
            served += run["requests"]
            runs.append(run)
            purge_queue(db, broker)
            db.reset()
        results[str(connections)] = median_run(runs, "accepted_per_s")
        best = results[str(connections)]
        log(
            f"[{broker}] accept c={connections}: {best['accepted_per_s']}/s p99 {best['p99_ms']} ms; "
            f"CPU ms/order {best['cpu']['ms_per_order']}"
        )
    peak = max(results.values(), key=lambda run: run["accepted_per_s"])
    half = round(peak["accepted_per_s"] / 2, 1)
    paced = ctx.measured(
        lambda: _then_trailing(
            db, run_wrk(stack.url, connections=32, seconds=plan.accept_seconds, env={"BENCH_RATE": str(half)})
        ),
        lambda run: db.one("SELECT count(*) FROM orders_order")[0],
    )
    paced["offered_per_s"] = half
    served += paced["requests"]
    purge_queue(db, broker)
    db.reset()
    log(f"[{broker}] accept at half the peak ({half}/s): p99 {paced['p99_ms']} ms")
    sampler.sample()
    return {
        "by_connections": results,
        "peak": peak,
        "half_peak": paced,
        "web_rss_after_warmup_mb": mb(rss_after_warmup),
        "web_rss_after_accepts_mb": mb(sampler.latest["web"]),
        "requests_served": served,
    }


def _then_trailing(db: Db, result: dict) -> dict:
    db.wait_for_trailing_accepts()
    return result


def purge_queue(db: Db, broker: str) -> None:
    if broker == "redis":
        import redis

        redis.from_url(REDIS_BASE).delete(f"django_q:{CLUSTER_NAME}:q")
    else:
        db.run("DELETE FROM django_q_ormq WHERE key = %s", CLUSTER_NAME)


def idle_e2e(ctx: Ctx) -> dict:
    """Scenario 2b: one order at a time on an idle system, accept -> COMPLETED."""
    timings = []
    for n in range(ctx.plan.idle_orders + 1):  # the first one warms the cluster up and is not counted
        reference = place_one(ctx.stack.url)
        (seconds,) = wait_for_database(
            ctx.db,
            "SELECT extract(epoch FROM completed_at - created_at) FROM orders_order "
            "WHERE reference = %s AND state = 'COMPLETED'",
            60,
            reference,
        )
        if n:
            timings.append(float(seconds) * 1000)
        time.sleep(0.3)  # let the cluster go idle again
    ctx.db.wait_settled(ctx.broker, 60)
    ctx.db.reset()
    result = {"runs_ms": [round(t, 1) for t in timings], "median_ms": round(statistics.median(timings), 1)}
    log(f"[{ctx.broker}] one order on an idle system: median {result['median_ms']} ms")
    return result


def _load_then_settle(ctx: Ctx, **wrk_args) -> Callable[[], dict]:
    """A load whose CPU account runs until the pipeline has finished every order it sent."""

    def load() -> dict:
        result = run_wrk(ctx.stack.url, **wrk_args)
        ctx.db.wait_for_trailing_accepts()
        # wrk may count none of a short run's answers on a swamped machine; the database counts.
        (stored,) = ctx.db.one("SELECT count(*) FROM orders_order")
        if stored == 0:
            raise BenchError(f"no order accepted: {result}")
        result["drain_after_load_s"] = round(ctx.db.wait_settled(ctx.broker, ctx.plan.settle_timeout), 2)
        result["failed_tasks"] = ctx.db.failed_tasks()
        return result

    return load


def sustained_e2e(ctx: Ctx, rate: float, seconds: float) -> dict:
    """Scenario 2a: orders arriving at a steady rate; completed/s and accept -> COMPLETED."""
    load = ctx.measured(
        _load_then_settle(ctx, connections=16, seconds=seconds, env={"BENCH_RATE": f"{rate:.2f}"}),
        lambda run: ctx.db.one("SELECT count(*) FROM orders_order")[0],
    )
    stats = ctx.db.e2e_stats()
    if stats["not_completed"]:
        failures = ctx.db.all(
            "SELECT state, failure_code, failure_reason, count(*) FROM orders_order WHERE state <> 'COMPLETED' "
            "GROUP BY 1, 2, 3"
        )
        raise BenchError(f"end to end at {rate}/s: {stats['not_completed']} orders did not complete: {failures}")
    ctx.db.reset()
    result = {"offered_per_s": round(rate, 2), "load": load, "cpu": load.pop("cpu"), **stats}
    log(
        f"[{ctx.broker}] e2e at {rate:.1f}/s: {stats['completed_per_s']} completed/s, "
        f"p50 {stats['p50_ms']} ms p99 {stats['p99_ms']} ms; CPU ms/order {result['cpu']['ms_per_order']}"
    )
    return result


def hot_product(ctx: Ctx) -> dict:
    """Scenario 3: every order for one product, until it sells out: units sold/s, sold == stock.

    wrk posts orders for the hot product (8 connections, where pgbench's hot row does best)
    in rounds of `hot_seconds` until the stock is gone; the orders after the last unit are
    answered REJECTED.
    """
    db, stock = ctx.db, ctx.plan.hot_stock
    db.reset(hot_stock=stock)

    def available() -> int:
        (units,) = db.one(
            "SELECT s.on_hand - s.reserved FROM inventory_stock s JOIN inventory_product p ON p.id = s.product_id "
            "WHERE p.sku = %s",
            HOT_SKU,
        )
        return units

    def load() -> dict:
        rounds = []
        while len(rounds) < 10 and (not rounds or available() > 0):
            rounds.append(
                run_wrk(ctx.stack.url, connections=8, seconds=ctx.plan.hot_seconds, env={"BENCH_HOT_SKU": HOT_SKU})
            )
        sent = {
            "rounds": len(rounds),
            **{key: sum(r[key] for r in rounds) for key in ("requests", "accepted", "errors", "wrk_cpu_s")},
            "p99_ms": max(r["p99_ms"] for r in rounds),
        }
        if sent["errors"] or available() > 0:
            raise BenchError(f"hot product: {stock} in stock, {available()} left after {rounds}")
        sent["drain_after_load_s"] = round(db.wait_settled(ctx.broker, ctx.plan.settle_timeout), 2)
        sent["failed_tasks"] = db.failed_tasks()
        return sent

    load = ctx.measured(load, lambda run: run["accepted"])
    (sold,) = db.one(
        "SELECT coalesce(-sum(m.quantity), 0) FROM inventory_stockmovement m JOIN inventory_product p "
        "ON p.id = m.product_id WHERE p.sku = %s AND m.reason = 'sale'",
        HOT_SKU,
    )
    on_hand, reserved = db.one(
        "SELECT on_hand, reserved FROM inventory_stock s JOIN inventory_product p ON p.id = s.product_id "
        "WHERE p.sku = %s",
        HOT_SKU,
    )
    states = dict(db.all("SELECT state, count(*) FROM orders_order GROUP BY state"))
    first_accept, last_reservation, last_sale = db.one(
        """
        SELECT (SELECT min(created_at) FROM orders_order),
               (SELECT max(created_at) FROM orders_orderevent WHERE step = 'validate_order' AND to_state = 'VALIDATED'),
               (SELECT max(created_at) FROM inventory_stockmovement WHERE reason = 'sale')
        """
    )
    if sold != stock or on_hand != 0 or reserved != 0 or states.get("COMPLETED", 0) != stock:
        raise BenchError(
            f"hot product: stock {stock}, sold {sold}, on hand {on_hand}, reserved {reserved}, states {states}"
        )
    reserve_span = (last_reservation - first_accept).total_seconds()
    sale_span = (last_sale - first_accept).total_seconds()
    db.reset()
    result = {
        "stock": stock,
        "orders": load["accepted"],
        "sold": sold,
        "sold_equals_stock": sold == stock,
        "states": states,
        "reserved_per_s": round(stock / reserve_span, 1),
        "deducted_per_s": round(stock / sale_span, 1),
        "load": load,
        "cpu": load.pop("cpu"),
    }
    log(f"[{ctx.broker}] hot product: {result['reserved_per_s']} units reserved/s, sold {sold} of {stock}")
    return result


def soak(ctx: Ctx, rate: float) -> dict:
    """Scenario 6: cluster worker memory after many orders (and the web workers' with it)."""
    sampler = ctx.sampler
    sampler.sample()
    before = {"web": mb(sampler.latest["web"]), "cluster": mb(sampler.latest["cluster"])}
    seconds = ctx.plan.soak_orders / rate
    load = ctx.measured(
        _load_then_settle(ctx, connections=16, seconds=seconds, env={"BENCH_RATE": f"{rate:.2f}"}),
        lambda run: ctx.db.one("SELECT count(*) FROM orders_order")[0],
    )
    stats = ctx.db.e2e_stats()
    sampler.sample()
    after = {"web": mb(sampler.latest["web"]), "cluster": mb(sampler.latest["cluster"])}
    ctx.db.reset()
    log(
        f"[{ctx.broker}] soak: {stats['completed']} orders, "
        f"cluster workers {before['cluster']} -> {after['cluster']} MB"
    )
    return {
        "orders": stats["completed"],
        "offered_per_s": round(rate, 2),
        "completed_per_s": stats["completed_per_s"],
        "before_mb": before,
        "after_mb": after,
        "cpu": load.pop("cpu"),
        "load": load,
    }


def mb(kib_values: list[int]) -> list[float]:
    """KiB from /proc as MB (10^6 bytes), the unit of the targets."""
    return [round(v * 1024 / 1e6, 1) for v in kib_values]


def redis_pid() -> int | None:
    import redis

    try:
        return int(redis.from_url(REDIS_BASE).info("server")["process_id"])
    except Exception:
        return None


def broker_run(plan: Plan, db_name: str, workdir: Path, broker: str, ceilings: dict, db: Db) -> dict:
    env = stack_env(db_name, workdir, broker)
    stack = Stack(env=env, workdir=workdir)
    sampler = MemorySampler()
    meter = CpuMeter(stack, Db(db.name).backend_pids, redis_pid())
    ctx = Ctx(plan, stack, db, broker, sampler, meter)
    meter.start()
    result: dict = {"broker": broker}
    try:
        db.reset()
        purge_queue(db, broker)
        stack.start_web(plan.web_workers, plan.web_threads)
        sampler.web = stack.web
        sampler.start()
        result["web"] = stack.web_config
        result["accept"] = accept_scenarios(ctx)
        purge_queue(db, broker)
        db.reset()
        stack.start_cluster(plan.cluster_workers)
        sampler.cluster = stack.cluster
        result["cluster"] = {"workers": plan.cluster_workers}
        result["idle"] = idle_e2e(ctx)
        render_ceiling = ceilings["receipts"]["ceiling_per_s"]
        # First as fast as the receipts could go (the pipeline's own ceiling shows as the
        # completed rate), then at a share of what it achieved, for latencies at a steady load.
        saturated = sustained_e2e(ctx, 5.0 if plan.quick else render_ceiling, plan.saturate_seconds)
        steady = max(1.0, saturated["completed_per_s"] * plan.sustained_fraction)
        result["e2e"] = [saturated, sustained_e2e(ctx, steady, plan.e2e_seconds)]
        result["hot"] = hot_product(ctx)
        if plan.soak_orders and broker == plan.brokers[0]:
            result["soak"] = soak(ctx, rate=max(1.0, saturated["completed_per_s"] * 0.7))
        sampler.sample()
        result["memory"] = {
            "web_worker_peak_mb": mb([sampler.peaks["web"]])[0],
            "cluster_worker_peak_mb": mb([sampler.peaks["cluster"]])[0],
            "cluster_other_peak_mb": mb([sampler.peaks["cluster_other"]])[0],
            "web_workers_now_mb": mb(sampler.latest["web"]),
            "cluster_workers_now_mb": mb(sampler.latest["cluster"]),
        }
    finally:
        meter.close()
        sampler.close()
        stack.close()
    return result


# --- the run ------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def tool_version(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except FileNotFoundError:
        return "not installed"
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else ""


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M)
    meminfo = Path("/proc/meminfo").read_text()
    total_kib = int(re.search(r"^MemTotal:\s*(\d+)", meminfo, re.M).group(1))
    return {
        "cores": os.cpu_count(),
        "cpu_model": model.group(1) if model else platform.processor(),
        "memory_gib": round(total_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "load_average": os.getloadavg(),
    }


def versions() -> dict:
    from importlib.metadata import version

    import redis

    return {
        "python": platform.python_version(),
        **{
            name: version(name)
            for name in ("Django", "djangorestframework", "django-q2", "gunicorn", "weasyprint", "psycopg")
        },
        "postgresql": psql("SHOW server_version"),
        "redis": redis.from_url(REDIS_BASE).info("server")["redis_version"],
        "wrk": tool_version(["wrk", "-v"]).split(" [")[0],
        "pgbench": tool_version(["pgbench", "--version"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK", "") not in ("", "0"))
    parser.add_argument("--brokers", default=os.environ.get("BENCH_BROKERS", "redis,orm"))
    parser.add_argument("--no-markdown", action="store_true", help="do not refresh BENCHMARKS.md")
    parser.add_argument("--keep-db", action="store_true", help="leave the run's database behind")
    args = parser.parse_args(argv)
    plan = Plan.for_mode(args.quick, [b for b in args.brokers.split(",") if b])

    db_name = os.environ.get("BENCH_DB", f"orders_bench_run_{os.getpid()}")
    workdir = Path(os.environ.get("BENCH_WORKDIR", ROOT / "var" / f"bench-{os.getpid()}"))
    clean_workdir(workdir)
    started = datetime.now(UTC)
    results: dict = {
        "started_at": started.isoformat(timespec="seconds"),
        "mode": "quick" if plan.quick else "full",
        "plan": asdict(plan),
        "machine": machine(),
        "versions": versions(),
    }
    log(f"{results['mode']} run on {results['machine']['cores']} cores, database {db_name}")
    recreate_database(db_name)
    db = None
    try:
        migrate_env = stack_env(db_name, workdir, "orm")
        Stack(env=migrate_env, workdir=workdir).manage("migrate", "--noinput")
        db = Db(db_name)
        ids = db.seed()
        db.reset()
        results["ceilings"] = {"pgbench": pgbench_ceilings(plan, db, db_name, ids)}
        results["ceilings"]["receipts"] = receipt_ceiling(plan, Stack(env=migrate_env, workdir=workdir))
        db.reset()
        results["brokers"] = {}
        for broker in plan.brokers:
            results["brokers"][broker] = broker_run(plan, db_name, workdir, broker, results["ceilings"], db)
    finally:
        if db:
            purge_queue(db, "redis")
            db.conn.close()
        if not args.keep_db:
            drop_database(db_name)
    shutil.rmtree(workdir, ignore_errors=True)  # kept only when the run fails: its logs are there
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["machine"]["load_average_end"] = os.getloadavg()

    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{started:%Y%m%dT%H%M%SZ}{'-quick' if plan.quick else ''}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    table = report.render(results)
    print(table)
    if not plan.quick and not args.no_markdown:
        report.refresh_markdown(ROOT / "BENCHMARKS.md", results, path.relative_to(ROOT))
        log("BENCHMARKS.md refreshed")
    log(f"results in {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"bench: FAILED: {error}\n(the stack's logs are under var/bench-*/)", file=sys.stderr)
        sys.exit(1)
