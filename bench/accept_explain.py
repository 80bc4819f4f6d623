"""EXPLAIN of every statement of the accepting request, on an empty shop and on a shop with
many orders: a query whose cost follows the tables' size shows as buffers that grow.

    python -m bench.accept_explain --database orders_explain [--orders 100000] [--repeats 15]

Seeds the database as bench/accept_calls.py does, fills it with `--orders` earlier orders
(one line and three history events each, a twentieth of them unpaid, from the bench's 1,000
emails and 997 addresses), posts one order through Django's test client with the stack's
settings (bench/stack.py's), and runs `EXPLAIN (ANALYZE, BUFFERS)` of each statement it sent
(the order placed in a transaction rolled back, each statement explained in another).
Buffers touched are the measure: they do not depend on what else the machine runs. With
`--repeats`, each statement is explained that many times and the medians of its planning
and execution times are printed apart (the accept's statements are planned on every
execution: config/settings/database.py). Prints one line per statement and one `BENCH_JSON`
line.
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from bench.accept_calls import PG_URL, seed, settings_env

FILL = """
INSERT INTO orders_order (reference, email, state, currency, subtotal, tax, total, payment_method,
    idempotency_key, request_hash, failure_code, failure_reason, needs_attention, created_at,
    updated_at, completed_at, tax_rate, redrive_count, placed_from)
SELECT 'fill_' || n, 'shopper' || (n % 1000) || '@example.com',
       CASE WHEN n % 20 = 0 THEN 'VALIDATED' ELSE 'COMPLETED' END, 'USD', 10.99, 0, 10.99, 'pm_card_visa',
       'fill-' || n, '', '', '', false, now() - interval '1 day' + n * interval '1 ms',
       now() - interval '1 day' + n * interval '1 ms',
       CASE WHEN n % 20 = 0 THEN NULL ELSE now() END, 0, 0,
       ('10.0.' || ((n % 997) / 250) || '.' || ((n % 997) % 250 + 1))::inet
FROM generate_series(1, %(orders)s) AS n;
INSERT INTO orders_orderline (sku, name, quantity, unit_price, line_total, order_id, product_id)
SELECT p.sku, p.name, 1, p.price, p.price, o.id, p.id
FROM orders_order o JOIN inventory_product p ON p.id = (SELECT min(id) FROM inventory_product) + o.id %% 1000
WHERE o.reference LIKE 'fill_%%';
INSERT INTO orders_orderevent (step, outcome, attempt, from_state, to_state, error, duration_ms, created_at,
    order_id, actor, kind, parameters, actor_kind)
SELECT 'validate_order', 'succeeded', 1, 'PENDING', 'VALIDATED', '', 1, o.created_at, o.id, '', 'step', '{}', 'system'
FROM orders_order o, generate_series(1, 3) WHERE o.reference LIKE 'fill_%%';
VACUUM ANALYZE;
"""


def plan_nodes(node: dict) -> list[str]:
    """Every node of a JSON plan, as "Seq Scan on orders_order" and the like."""
    found = [node["Node Type"] + (f" on {node['Relation Name']}" if "Relation Name" in node else "")]
    for below in node.get("Plans", []):
        found += plan_nodes(below)
    return found


def child(repeats: int = 1) -> dict:
    """Place one order (after one untraced), capture its statements, EXPLAIN each `repeats`
    times (planning and execution times: the medians)."""
    import django

    django.setup()
    from django.db import connection, transaction
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()

    def post(n: int) -> None:
        body = {"email": "shopper7@example.com", "lines": [{"sku": "BENCH-0042", "quantity": 1}]}
        body["payment_method"] = "pm_card_visa"
        answer = client.post(
            "/api/orders/",
            json.dumps(body),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=f"explain-{n}",
            HTTP_X_FORWARDED_FOR="10.0.0.8",
        )
        if answer.status_code != 202:
            raise RuntimeError(f"{answer.status_code} {answer.content[:300]!r}")

    post(1)
    # Rolled back, so that its inserts can be explained (run) again: the request's own
    # transaction becomes a savepoint, its statements are the same.
    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        post(2)
        transaction.set_rollback(True)
    plans = []
    for query in captured.captured_queries:
        sql = query["sql"]
        verb = sql.lstrip().split(None, 1)[0].upper()
        if verb not in ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH") or "pg_backend_pid" in sql:
            continue
        runs = [explain(connection, sql) for _ in range(repeats)]
        plan = runs[-1]
        nodes = plan_nodes(plan["Plan"])
        top = plan["Plan"]
        planning = statistics.median(run.get("Planning Time", 0) for run in runs)
        execution = statistics.median(run["Execution Time"] for run in runs)
        plans.append(
            {
                "sql": sql[:160],
                "ms": round(planning + execution, 3),
                "planning_ms": round(planning, 3),
                "execution_ms": round(execution, 3),
                "buffers": top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0),
                "seq_scans": [n for n in nodes if n.startswith("Seq Scan")],
            }
        )
    return {"statements": plans}


def explain(connection, sql: str) -> dict:
    """`EXPLAIN (ANALYZE, BUFFERS)` of `sql`, run in a transaction rolled back: its JSON plan."""
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        try:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql)
            (plan,) = cursor.fetchone()
        finally:
            cursor.execute("ROLLBACK")
    return plan[0] if isinstance(plan, list) else json.loads(plan)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="a database of its own: dropped and made anew")
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--broker", choices=["redis", "orm"], default="redis")
    parser.add_argument("--repeats", type=int, default=1, help="EXPLAINs per statement (medians of the times)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    tree = Path.cwd()
    if args.child:
        sys.path.insert(0, str(tree))
        print("BENCH_JSON " + json.dumps(child(args.repeats)))
        return 0
    import psycopg

    seed(args.database, tree)
    try:
        if args.orders:
            with psycopg.connect(f"{PG_URL}/{args.database}", autocommit=True) as conn:
                for statement in FILL.split(";\n"):
                    if statement.strip():
                        conn.execute(statement.replace("%(orders)s", str(args.orders)).replace("%%", "%"))
        done = subprocess.run(
            [sys.executable, "-m", "bench.accept_explain", "--child", "--database", args.database]
            + ["--repeats", str(args.repeats)],
            cwd=tree,
            env=settings_env(args.database, args.broker),
            capture_output=True,
            text=True,
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH_JSON ")]
        if done.returncode or not lines:
            sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
            return 1
        result = json.loads(lines[-1].removeprefix("BENCH_JSON "))
    finally:
        with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
    result["orders"] = args.orders
    for s in result["statements"]:
        scans = f"  seq scans: {', '.join(s['seq_scans'])}" if s["seq_scans"] else ""
        times = f"plan {s['planning_ms']:>6.3f} + run {s['execution_ms']:>6.3f} ms"
        print(f"{s['buffers']:>6} buffers  {times}  {s['sql'][:100]}{scans}")
    print("BENCH_JSON " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
