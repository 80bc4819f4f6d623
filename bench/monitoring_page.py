"""The monitoring page with a big history: its server time and queries with N orders.

Run by bench/scenarios.py (`measure_monitoring_page`) after the other scenarios, or on its
own on a database of its own:

    python -m bench.monitoring_page --orders 1000000

The driver seeds N orders spread over 30 days (most completed, some declined, failed,
rejected or cancelled, a few still open) with five history events each, and ANALYZEs. A
fresh process with the run's settings then renders the page's view (as a manager, through
the view itself) a few times and prints one JSON line: the median and worst render time,
the number of queries, and the slowest query with its time.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

# Imported lazily by the driver's functions: bench.database configures Django for the
# driver (bench/order_states.py), which the rendering process must do with its own settings.
ROOT = Path(__file__).resolve().parent.parent

DAYS = 30
RENDERS = 5

SEED_ORDERS = """
INSERT INTO orders_order (reference, email, state, currency, subtotal, tax_rate, tax, total, payment_method,
                          request_hash, failure_code, failure_reason, needs_attention, redrive_count, created_at,
                          updated_at, completed_at)
SELECT 'ord_bench_' || n, 'shopper@example.com',
       CASE WHEN n > %(orders)s - 20 THEN 'VALIDATED'
            WHEN n %% 100 < 90 THEN 'COMPLETED' WHEN n %% 100 < 95 THEN 'PAYMENT_FAILED'
            WHEN n %% 100 < 97 THEN 'REJECTED' WHEN n %% 100 < 99 THEN 'FAILED' ELSE 'CANCELLED' END,
       'USD', 20, 0, 0, 20, 'pm_card_visa', 'bench', '', '', false, 0, t, t + interval '2 seconds',
       CASE WHEN n %% 100 < 90 AND n <= %(orders)s - 20 THEN t + interval '2 seconds' END
FROM generate_series(1, %(orders)s) AS n,
     LATERAL (SELECT now() - (%(orders)s - n) * (interval '1 day' * %(days)s / %(orders)s) AS t) AS at
"""
# Five attempts per order, as the pipeline writes them: a third of payments retried once.
SEED_EVENTS = """
INSERT INTO orders_orderevent (order_id, kind, step, outcome, attempt, from_state, to_state, error, duration_ms,
                               parameters, actor_kind, actor, created_at)
SELECT o.id, s.kind, s.step,
       CASE WHEN s.step = 'process_payment' AND o.id %% 3 = 0 AND s.n = 2 THEN 'retrying' ELSE 'succeeded' END,
       1, '', '', '', (o.id * 7919 + s.n * 104729) %% (s.ms * 2) + 1, '{}', 'pipeline', '',
       o.created_at + s.n * interval '300 milliseconds'
FROM orders_order o,
     (VALUES (1, 'state_changed', 'validate_order', 40), (2, 'state_changed', 'process_payment', 150),
             (3, 'state_changed', 'update_inventory', 60), (4, 'step_succeeded', 'generate_receipt', 700),
             (5, 'state_changed', 'send_notification', 50)) AS s(n, kind, step, ms)
"""


def seed(db, orders: int) -> dict:
    """N orders and 5 N events; how long the seeding took."""
    started = time.monotonic()
    with db.conn.cursor() as cursor:
        cursor.execute(SEED_ORDERS, {"orders": orders, "days": DAYS})
        cursor.execute(SEED_EVENTS, {})
    db.run("VACUUM ANALYZE orders_order")
    db.run("VACUUM ANALYZE orders_orderevent")
    (events,) = db.one("SELECT count(*) FROM orders_orderevent")
    return {"orders": orders, "events": events, "seed_s": round(time.monotonic() - started, 1)}


def measure(stack, seeded: dict) -> dict:
    """Render the page in a fresh process with the stack's settings; its numbers and the seeding's."""
    from bench.log import log

    stack.manage("collectstatic", "--noinput", "--verbosity", "0", timeout=900)  # the admin's pages link their CSS
    rendered = stack.run_json_module("bench.monitoring_page", "--render", what="monitoring page benchmark", timeout=900)
    result = {**seeded, **rendered}
    log(
        f"monitoring page with {seeded['orders']:,} orders: median {result['median_ms']} ms, "
        f"{result['queries']} queries, slowest {result['slowest_query_ms']} ms"
    )
    return result


def render() -> dict:
    """In the run's environment: render the page as a manager RENDERS times (after one warm-up)."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import RequestFactory
    from django.test.utils import CaptureQueriesContext

    from monitoring.views import monitoring_page

    manager = User.objects.filter(is_superuser=True).first() or User.objects.create_superuser("bench", "", None)
    request = RequestFactory().get("/admin/monitoring/")
    request.user = manager
    request.session = {}

    def once() -> tuple[float, CaptureQueriesContext]:
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = monitoring_page(request)
            response.render()
            elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"the page answered {response.status_code}")
        return elapsed, queries

    once()  # warm: templates compiled, the connection open
    runs = [once() for _ in range(RENDERS)]
    times = [elapsed for elapsed, _ in runs]
    by_time = sorted(runs[-1][1].captured_queries, key=lambda q: -float(q["time"]))
    slowest = by_time[0]
    from monitoring.health import run_readiness_checks

    ready_times = []
    for _ in range(RENDERS):  # /health/ready's checks over the same history (the cluster's fails: none runs)
        started = time.perf_counter()
        run_readiness_checks()
        ready_times.append(time.perf_counter() - started)
    return {
        "ready_median_ms": round(statistics.median(ready_times) * 1000, 1),
        "renders": RENDERS,
        "median_ms": round(statistics.median(times) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
        "queries": len(runs[-1][1].captured_queries),
        "slowest_query_ms": round(float(slowest["time"]) * 1000, 1),
        "slowest_query": slowest["sql"][:300],
        "queries_ms": [[round(float(q["time"]) * 1000, 1), q["sql"][:160]] for q in by_time],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--render", action="store_true", help="(internal) render in this process and print JSON")
    args = parser.parse_args(argv)
    if args.render:
        print("BENCH_JSON " + json.dumps(render()))
        return 0
    from bench.database import Db
    from bench.stack import Stack, clean_workdir, drop_database, recreate_database, stack_env

    db_name = f"orders_bench_monitoring_{os.getpid()}"
    workdir = ROOT / "var" / f"bench-monitoring-{os.getpid()}"
    clean_workdir(workdir)
    recreate_database(db_name)
    try:
        env = stack_env(db_name, workdir, "orm")
        stack = Stack(env=env, workdir=workdir)
        stack.manage("migrate", "--noinput")
        db = Db(db_name)
        try:
            print(json.dumps(measure(stack, seed(db, args.orders)), indent=2))
        finally:
            db.conn.close()
    finally:
        drop_database(db_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
