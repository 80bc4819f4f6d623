"""The scenarios of BENCHMARKS.md: each applies a load, checks what the system did with it
and returns the numbers of bench/results/<timestamp>.json.

The ceilings (pgbench, receipts) run on the database alone; the others run against one
broker's stack, through a ScenarioContext, and leave the database reset for the next.
"""

import os
import statistics
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bench.database import HOT_SKU, PLENTY, Db, wait_for_row
from bench.load_tools import place_one_order, run_pgbench, run_wrk
from bench.log import log
from bench.meters import CpuMeter, MemorySampler, convert_kib_to_mb, find_redis_pid
from bench.plan import Plan
from bench.stack import BenchError, Stack, stack_env


def pick_median_run(runs: list[dict], key: str) -> dict:
    """The run whose `key` is the median of the repeats (its other numbers come with it)."""
    ordered = sorted(runs, key=lambda run: run[key])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["repeats"] = [run[key] for run in runs]
    return chosen


@dataclass
class ScenarioContext:
    """What every scenario of one broker's run works with."""

    plan: Plan
    stack: Stack
    db: Db
    broker: str
    sampler: MemorySampler
    meter: CpuMeter

    def run_measured(self, load: Callable[[], dict], orders: Callable[[dict], int]) -> dict:
        """Run `load` (which returns a wrk result) and say where the CPU went, per order."""
        before = self.meter.snapshot()
        result = load()
        after = self.meter.snapshot()
        result["cpu"] = CpuMeter.spent(before, after, load_tool=result["wrk_cpu_s"], orders=orders(result))
        return result


@contextmanager
def web_stack(plan: Plan, db: Db, workdir, broker: str) -> Iterator[ScenarioContext]:
    """One broker's stack with its web server up on an emptied database, the CPU meter and
    the memory sampler running; all stopped on leaving."""
    stack = Stack(env=stack_env(db.name, workdir, broker), workdir=workdir)
    sampler = MemorySampler()
    meter = CpuMeter(stack, Db(db.name).list_backend_pids, find_redis_pid())
    meter.start()
    try:
        db.reset()
        db.purge_queue(broker)
        stack.start_web(plan.web_workers, plan.web_threads)
        sampler.web = stack.web
        sampler.start()
        yield ScenarioContext(plan, stack, db, broker, sampler, meter)
    finally:
        meter.close()
        sampler.close()
        stack.close()


def measure_pgbench_ceilings(plan: Plan, db: Db, db_name: str, ids: dict[str, int]) -> dict:
    """Scenario 4: the database's own ceiling for one order's reservation."""
    results = {}
    for hot in (False, True):
        per_clients = []
        for clients in plan.pgbench_clients:
            runs = []
            for _ in range(plan.repeats):
                db.reset(hot_stock=PLENTY)
                runs.append(run_pgbench(db_name, ids, clients=clients, seconds=plan.pgbench_seconds, hot=hot))
            per_clients.append(pick_median_run(runs, "tps"))
        best = max(per_clients, key=lambda run: run["tps"])
        results["hot" if hot else "random"] = {"best": best, "by_clients": per_clients}
        log(f"pgbench {'hot' if hot else 'random'}: {best['tps']} tps ({best['clients']} clients)")
    db.reset()
    return results


def measure_receipt_ceiling(plan: Plan, stack: Stack) -> dict:
    """Scenario 5: one receipt's render time and memory, and cores / render time."""
    result = stack.run_json_module("bench.receipts", str(plan.receipt_renders), what="receipt benchmark")
    result["ceiling_per_s"] = round(os.cpu_count() / (result["median_ms"] / 1000), 1)
    log(
        f"receipts: median {result['median_ms']} ms, ceiling {result['ceiling_per_s']}/s; CPU new / 2026-11 template "
        f"{result['new_over_old_cpu']}, Python calls {result['new_over_old_calls']}"
    )
    return result


def measure_monitoring_page(plan: Plan, db: Db, stack: Stack) -> dict:
    """The monitoring page's server time and queries with `plan.monitoring_orders` orders of
    history (bench/monitoring_page.py); the database is reset afterwards."""
    from bench import monitoring_page

    db.reset()
    try:
        return monitoring_page.measure(stack, monitoring_page.seed(db, plan.monitoring_orders))
    finally:
        db.reset()


def measure_accepts(ctx: ScenarioContext) -> dict:
    """Scenario 1: accepting orders alone (no cluster running), at fixed concurrencies."""
    plan, stack, db, broker, sampler = ctx.plan, ctx.stack, ctx.db, ctx.broker, ctx.sampler
    # Warm every worker up; its last orders stored before the reset, whose TRUNCATE an order
    # still in gunicorn's backlog could otherwise deadlock with.
    _wait_for_trailing_accepts(db, run_wrk(stack.url, connections=8, seconds=1))
    db.purge_queue(broker)
    db.reset()
    sampler.sample()
    rss_after_warmup = list(sampler.latest["web"])
    results, served = {}, 0
    for connections in plan.concurrencies:
        runs = []
        for _ in range(plan.repeats):
            run = ctx.run_measured(
                lambda c=connections: _wait_for_trailing_accepts(
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
            db.purge_queue(broker)
            db.reset()
        results[str(connections)] = pick_median_run(runs, "accepted_per_s")
        best = results[str(connections)]
        log(
            f"[{broker}] accept c={connections}: {best['accepted_per_s']}/s p99 {best['p99_ms']} ms; "
            f"CPU ms/order {best['cpu']['ms_per_order']}"
        )
    peak = max(results.values(), key=lambda run: run["accepted_per_s"])
    half = round(peak["accepted_per_s"] / 2, 1)
    paced = ctx.run_measured(
        lambda: _wait_for_trailing_accepts(
            db, run_wrk(stack.url, connections=32, seconds=plan.accept_seconds, env={"BENCH_RATE": str(half)})
        ),
        lambda run: db.one("SELECT count(*) FROM orders_order")[0],
    )
    paced["offered_per_s"] = half
    served += paced["requests"]
    db.purge_queue(broker)
    db.reset()
    log(f"[{broker}] accept at half the peak ({half}/s): p99 {paced['p99_ms']} ms")
    sampler.sample()
    return {
        "by_connections": results,
        "peak": peak,
        "half_peak": paced,
        "web_rss_after_warmup_mb": convert_kib_to_mb(rss_after_warmup),
        "web_rss_after_accepts_mb": convert_kib_to_mb(sampler.latest["web"]),
        "requests_served": served,
    }


def _wait_for_trailing_accepts(db: Db, result: dict) -> dict:
    """`result`, once the orders still in the listen backlog have been stored."""
    db.wait_for_trailing_accepts()
    return result


def measure_idle_e2e(ctx: ScenarioContext) -> dict:
    """Scenario 2b: one order at a time on an idle system, accept -> COMPLETED."""
    timings = []
    for n in range(ctx.plan.idle_orders + 1):  # the first one warms the cluster up and is not counted
        reference = place_one_order(ctx.stack.url)
        (seconds,) = wait_for_row(
            ctx.db,
            "SELECT extract(epoch FROM completed_at - created_at) FROM orders_order "
            "WHERE reference = %s AND state = 'COMPLETED'",
            60,
            reference,
        )
        if n:
            timings.append(float(seconds) * 1000)
        time.sleep(0.3)  # let the cluster go idle again
    ctx.db.wait_until_settled(ctx.broker, 60)
    ctx.db.reset()
    result = {"runs_ms": [round(t, 1) for t in timings], "median_ms": round(statistics.median(timings), 1)}
    log(f"[{ctx.broker}] one order on an idle system: median {result['median_ms']} ms")
    return result


def _build_load_then_settle(ctx: ScenarioContext, **wrk_args) -> Callable[[], dict]:
    """A load whose CPU account runs until the pipeline has finished every order it sent."""

    def load() -> dict:
        result = run_wrk(ctx.stack.url, **wrk_args)
        ctx.db.wait_for_trailing_accepts()
        # wrk may count none of a short run's answers on a swamped machine; the database counts.
        (stored,) = ctx.db.one("SELECT count(*) FROM orders_order")
        if stored == 0:
            raise BenchError(f"no order accepted: {result}")
        result["drain_after_load_s"] = round(ctx.db.wait_until_settled(ctx.broker, ctx.plan.settle_timeout), 2)
        result["failed_tasks"] = ctx.db.read_failed_tasks()
        return result

    return load


def measure_sustained_e2e(ctx: ScenarioContext, rate: float, seconds: float) -> dict:
    """Scenario 2a: orders arriving at a steady rate; completed/s and accept -> COMPLETED."""
    load = ctx.run_measured(
        _build_load_then_settle(ctx, connections=16, seconds=seconds, env={"BENCH_RATE": f"{rate:.2f}"}),
        lambda run: ctx.db.one("SELECT count(*) FROM orders_order")[0],
    )
    stats = ctx.db.read_e2e_stats()
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


def measure_hot_product(ctx: ScenarioContext) -> dict:
    """Scenario 3: every order for one product, until it sells out: units sold/s, sold == stock.

    wrk posts orders for the hot product (8 connections, where pgbench's hot row does best)
    in rounds of `hot_seconds` until the stock is gone; the orders after the last unit are
    answered REJECTED. Then the same for random products (`_random_beside_the_cluster`), so
    that the hot product's rate is compared with the rate of any product under the same
    conditions, the cluster working beside both.
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
        sent["drain_after_load_s"] = round(db.wait_until_settled(ctx.broker, ctx.plan.settle_timeout), 2)
        sent["failed_tasks"] = db.read_failed_tasks()
        return sent

    load = ctx.run_measured(load, lambda run: run["accepted"])
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
    random_products = _random_beside_the_cluster(ctx, units=stock)
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
        "random_beside_cluster": random_products,
        "hot_over_random": round(stock / reserve_span / random_products["reserved_per_s"], 3),
    }
    log(
        f"[{ctx.broker}] hot product: {result['reserved_per_s']} units reserved/s, sold {sold} of {stock}; "
        f"random products beside the cluster {random_products['reserved_per_s']}/s: "
        f"hot / random {result['hot_over_random']}"
    )
    return result


def _random_beside_the_cluster(ctx: ScenarioContext, *, units: int) -> dict:
    """Orders for random products, posted as the hot product's are (wrk, 8 connections, rounds
    of `hot_seconds`, the cluster working beside) until `units` are reserved: units reserved/s
    from the orders' own timestamps, as the hot product's. The database is reset afterwards."""
    db = ctx.db
    db.reset()

    def reserved() -> int:
        return db.one(
            "SELECT count(*) FROM orders_orderevent WHERE step = 'validate_order' AND to_state = 'VALIDATED'"
        )[0]

    rounds = []
    while len(rounds) < 10 and (not rounds or reserved() < units):
        rounds.append(run_wrk(ctx.stack.url, connections=8, seconds=ctx.plan.hot_seconds))
    if errors := sum(r["errors"] for r in rounds):
        raise BenchError(f"random products beside the cluster: {errors} errors: {rounds[-1]['error_sample']}")
    db.wait_until_settled(ctx.broker, ctx.plan.settle_timeout)
    count, span = db.one(
        """
        SELECT count(*), extract(epoch FROM max(e.created_at) - (SELECT min(created_at) FROM orders_order))
        FROM orders_orderevent e WHERE e.step = 'validate_order' AND e.to_state = 'VALIDATED'
        """
    )
    db.reset()
    return {"rounds": len(rounds), "orders": count, "reserved_per_s": round(count / float(span), 1)}


def measure_framework_floor(ctx: ScenarioContext) -> dict:
    """The framework's floor: wrk posting to the no-op POST /bench/floor (config/framework_floor.py)
    through the same gunicorn, middleware and settings, at 8 connections; CPU per request."""
    plan, stack = ctx.plan, ctx.stack
    runs = []
    for _ in range(plan.repeats):
        run = ctx.run_measured(
            lambda: run_wrk(stack.url, connections=8, seconds=plan.accept_seconds, env={"BENCH_PATH": "/bench/floor"}),
            lambda run: run["accepted"],
        )
        run["web_ms"] = run["cpu"]["ms_per_order"].get("web", 0.0)
        runs.append(run)
    floor = pick_median_run(runs, "web_ms")
    log(f"[{ctx.broker}] framework floor: {floor['accepted_per_s']}/s, web {floor['web_ms']} ms CPU per request")
    return floor


def _probe_costs(ctx: ScenarioContext, steady_rate: float) -> dict:
    """The accepting request alone (cluster stopped, 8 connections) and the steady end-to-end
    load, each `repeats` times, as CPU ms per order (medians), leaving the orders already in
    the database in place: the probes' own accepted orders are taken back."""
    plan, stack, db = ctx.plan, ctx.stack, ctx.db
    stack.stop_cluster()
    accepts = []
    for _ in range(plan.repeats):
        (mark,) = db.one("SELECT coalesce(max(id), 0) FROM orders_order")
        run = ctx.run_measured(
            lambda: _wait_for_trailing_accepts(db, run_wrk(stack.url, connections=8, seconds=plan.accept_seconds)),
            lambda run, mark=mark: db.one("SELECT count(*) FROM orders_order WHERE id > %s", mark)[0],
        )
        accepts.append(sum(run["cpu"]["ms_per_order"].get(part, 0.0) for part in ("web", "postgres", "redis")))
        db.purge_queue(ctx.broker)
        db.remove_orders_after(mark)
    stack.start_cluster(plan.cluster_workers)
    ctx.sampler.cluster = stack.cluster
    steadies = []
    for _ in range(plan.repeats):
        (mark,) = db.one("SELECT coalesce(max(id), 0) FROM orders_order")
        load = ctx.run_measured(
            _build_load_then_settle(
                ctx, connections=16, seconds=plan.e2e_seconds, env={"BENCH_RATE": f"{steady_rate:.2f}"}
            ),
            lambda run, mark=mark: db.one("SELECT count(*) FROM orders_order WHERE id > %s", mark)[0],
        )
        steadies.append(round(sum(load["cpu"]["ms_per_order"].get(part, 0.0) for part in STACK_PARTS), 2))
    (orders,) = db.one("SELECT count(*) FROM orders_order")
    return {
        "orders_in_database": orders,
        "accept_ms_per_order": round(statistics.median(accepts), 2),
        "accept_repeats": [round(a, 2) for a in accepts],
        "steady_ms_per_order": statistics.median(steadies),
        "steady_repeats": steadies,
    }


def measure_costs_over_data(ctx: ScenarioContext, steady_rate: float, soak_rate: float) -> dict:
    """Scenario 9: costs flat with the data. The accept and the steady runs' CPU per order
    (web, PostgreSQL and Redis for accepting; the whole stack end to end) on an empty
    database, then again after the soak's orders (scenario 6), kept in place, twice: as the
    soak left the tables, and after the VACUUM ANALYZE that autovacuum would have run by then
    (this machine's PostgreSQL runs without it; production's runs it, docs/deployment.md).
    The ratios after/before (target: within 5%, once vacuumed)."""
    before = _probe_costs(ctx, steady_rate)
    soak = measure_soak(ctx, soak_rate, keep_orders=True)
    unvacuumed = _probe_costs(ctx, steady_rate)
    ctx.db.run("VACUUM ANALYZE")
    after = _probe_costs(ctx, steady_rate)
    ctx.db.reset()
    ratio = lambda after, key: round(after[key] / before[key], 3)  # noqa: E731
    result = {
        "before": before,
        "after_without_vacuum": unvacuumed,
        "after": after,
        "accept_ratio": ratio(after, "accept_ms_per_order"),
        "steady_ratio": ratio(after, "steady_ms_per_order"),
        "accept_ratio_without_vacuum": ratio(unvacuumed, "accept_ms_per_order"),
        "steady_ratio_without_vacuum": ratio(unvacuumed, "steady_ms_per_order"),
        "soak": soak,
    }
    log(
        f"[{ctx.broker}] after {after['orders_in_database']} orders (vacuumed; without: accept "
        f"x{result['accept_ratio_without_vacuum']}, steady x{result['steady_ratio_without_vacuum']}): accept "
        f"{before['accept_ms_per_order']} -> {after['accept_ms_per_order']} ms CPU per order "
        f"(x{result['accept_ratio']}), steady {before['steady_ms_per_order']} -> {after['steady_ms_per_order']} "
        f"(x{result['steady_ratio']})"
    )
    return result


def measure_soak(ctx: ScenarioContext, rate: float, *, keep_orders: bool = False) -> dict:
    """Scenario 6: cluster worker memory after many orders (and the web workers' with it);
    the orders stay in the database with `keep_orders` (scenario 9 measures after them)."""
    sampler = ctx.sampler
    sampler.sample()
    before = {"web": convert_kib_to_mb(sampler.latest["web"]), "cluster": convert_kib_to_mb(sampler.latest["cluster"])}
    seconds = ctx.plan.soak_orders / rate
    load = ctx.run_measured(
        _build_load_then_settle(ctx, connections=16, seconds=seconds, env={"BENCH_RATE": f"{rate:.2f}"}),
        lambda run: ctx.db.one("SELECT count(*) FROM orders_order")[0],
    )
    stats = ctx.db.read_e2e_stats()
    sampler.sample()
    after = {"web": convert_kib_to_mb(sampler.latest["web"]), "cluster": convert_kib_to_mb(sampler.latest["cluster"])}
    if not keep_orders:
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


# The parts of the stack whose CPU an order costs (not the load tool, not other users).
STACK_PARTS = ("web", "cluster", "postgres", "redis")
METRICS_TOKEN = "bench-metrics-token"


def _restart_stack(ctx: ScenarioContext, *, metrics: bool) -> None:
    """The web server and the cluster again, with metrics recorded or not, warmed up."""
    stack, plan = ctx.stack, ctx.plan
    stack.env.update(METRICS_ENABLED="1" if metrics else "0", METRICS_TOKEN=METRICS_TOKEN)
    stack.close()
    stack.start_web(plan.web_workers, plan.web_threads)
    stack.start_cluster(plan.cluster_workers)
    ctx.sampler.web, ctx.sampler.cluster = stack.web, stack.cluster
    for _ in range(3):  # every worker imports what an order needs before the meter runs
        place_one_order(stack.url)
    ctx.db.wait_until_settled(ctx.broker, 60)
    ctx.db.reset()


def _recordings(stack: Stack) -> float:
    """How many times the stack has recorded a metric so far: every counter's total and
    every histogram's count, summed over /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    request = urllib.request.Request(f"{stack.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        text = answer.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.type in ("counter", "histogram")
        for sample in family.samples
        if sample.name.endswith(("_total", "_count"))
    )


def _ns_per_recording(stack: Stack) -> float:
    """What one recording costs in a process of the stack (multiprocess mode, its own folder):
    a labelled counter's inc and a labelled histogram's observe, averaged."""
    code = (
        "import time\nfrom framework import metrics\n"
        "c, h, n = metrics.STEP_ATTEMPTS.labels('bench', 'succeeded'), metrics.STEP_DURATION.labels('bench'), 20000\n"
        "t = time.perf_counter()\n"
        "for _ in range(n):\n"
        "    metrics.STEP_ATTEMPTS.labels('bench', 'succeeded').inc()\n"
        "    metrics.STEP_DURATION.labels('bench').observe(0.01)\n"
        "print((time.perf_counter() - t) / (2 * n) * 1e9)"
    )
    folder = stack.workdir / "metrics-cost"
    folder.mkdir(exist_ok=True)
    env = dict(stack.env, METRICS_ENABLED="1", PROMETHEUS_MULTIPROC_DIR=str(folder))
    return float(Stack(env=env, workdir=stack.workdir).manage("shell", "-c", code).split()[-1])


def measure_metrics_overhead(ctx: ScenarioContext, rate: float) -> dict:
    """Scenario 7: the stack's CPU per order with metrics recorded against not, at a steady rate.

    The stack is restarted for each run, metrics off then on, then on then off, `repeats`
    times, so a drift of the shared machine falls on both; each side's median run counts.
    The whole-stack difference is noisy on a shared machine, so the recording itself is
    priced too: recordings per order (from /metrics) times what one costs.
    """
    runs: dict[str, list[dict]] = {"off": [], "on": []}
    recorded = []
    for repeat in range(ctx.plan.repeats):
        for mode in ("off", "on") if repeat % 2 == 0 else ("on", "off"):
            _restart_stack(ctx, metrics=mode == "on")
            before = _recordings(ctx.stack) if mode == "on" else 0.0
            run = measure_sustained_e2e(ctx, rate, ctx.plan.e2e_seconds)
            run["stack_ms_per_order"] = round(sum(run["cpu"]["ms_per_order"].get(p, 0) for p in STACK_PARTS), 2)
            if mode == "on":
                recorded.append((_recordings(ctx.stack) - before) / run["completed"])
            runs[mode].append(run)
    if mode == "off":
        _restart_stack(ctx, metrics=True)  # the stack as it runs by default, for what follows
    off = pick_median_run(runs["off"], "stack_ms_per_order")
    on = pick_median_run(runs["on"], "stack_ms_per_order")
    per_order = statistics.median(recorded)
    ns = _ns_per_recording(ctx.stack)
    recording_ms = per_order * ns / 1e6
    result = {
        "offered_per_s": round(rate, 2),
        "off_ms_per_order": off["stack_ms_per_order"],
        "on_ms_per_order": on["stack_ms_per_order"],
        "off_repeats": off["repeats"],
        "on_repeats": on["repeats"],
        "overhead_pct": round(
            100 * (on["stack_ms_per_order"] - off["stack_ms_per_order"]) / off["stack_ms_per_order"], 2
        ),
        "recordings_per_order": round(per_order, 1),
        "ns_per_recording": round(ns),
        "recording_ms_per_order": round(recording_ms, 3),
        "recording_pct": round(100 * recording_ms / off["stack_ms_per_order"], 3),
    }
    log(
        f"[{ctx.broker}] metrics: {result['off_ms_per_order']} ms CPU per order off, {result['on_ms_per_order']} on "
        f"({result['overhead_pct']:+.1f}%); {result['recordings_per_order']} recordings per order at "
        f"{result['ns_per_recording']} ns = {result['recording_pct']}% of an order's CPU"
    )
    return result
