"""How long a hot product's stock row stays locked per order: the hot row's own ceiling.

    python -m bench.hot_row_hold --orders 200

Every buyer of one product queues on its stock row from the moment a transaction updates it
to that transaction's commit (PostgreSQL releases the row after the commit's WAL flush). An
order locks it twice: the accepting request's reservation and the pipeline's deduction. This
places `orders` orders for the bench's hot product one at a time, in one process with the
stack's settings (bench/stack.py, Django's test client, the whole middleware), then runs each
order's payment and deduction steps, and times, for each transaction that updates the row,
the update, the Python between it and the commit, and the commit. One order's hold is the
sum of both transactions' holds; 1 / hold is the most orders per second the row lets
through, however many cores: the figure to set beside the accept rate of a random product.
`--random` times the same transactions on random products, to compare.
Printed as one `BENCH_JSON` line.
"""

import argparse
import json
import statistics
import sys
import time
from contextlib import contextmanager


@contextmanager
def timed_holds():
    """Yield a list that fills with one (update, python, commit) triple, in seconds, per
    transaction that updated a stock row on this process's connection."""
    from django.db import connection

    holds: list[tuple[float, float, float]] = []
    update: dict[str, float] = {}

    def record(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            if sql.startswith('UPDATE "inventory_stock"'):
                update.setdefault("started", started)
                update["ended"] = time.perf_counter()

    commit = connection.commit

    def commit_and_time():
        started = time.perf_counter()
        commit()
        if update:
            holds.append(
                (update["ended"] - update["started"], started - update["ended"], time.perf_counter() - started)
            )
            update.clear()

    connection.commit = commit_and_time
    try:
        with connection.execute_wrapper(record):
            yield holds
    finally:
        del connection.commit


def summarise(holds: list[tuple[float, float, float]]) -> dict:
    """Medians in milliseconds: the update, the Python after it, the commit, and their sum."""
    parts = {name: [h[n] for h in holds] for n, name in enumerate(("update", "python_after", "commit"))}
    result = {f"{name}_ms": round(1000 * statistics.median(values), 3) for name, values in parts.items()}
    result["hold_ms"] = round(1000 * statistics.median(sum(h) for h in holds), 3)
    result["transactions"] = len(holds)
    return result


def measure(orders: int, *, random_products: bool = False) -> dict:
    """Place `orders` hot orders (or orders for random products, to compare), then pay and
    deduct each; the holds of both transactions."""
    import random

    from django.test import Client

    from bench.accept_inprocess import post_order
    from bench.database import HOT_SKU
    from orders.models import Order
    from orders.pipeline import run_step

    client = Client()
    with timed_holds() as accepting:
        for n in range(orders):
            sku = f"BENCH-{random.randint(1, 1000):04d}" if random_products else HOT_SKU
            post_order(client, n, sku, key=f"hot-{n}")
    ids = list(Order.objects.order_by("pk").values_list("pk", flat=True))
    for order_id in ids:
        run_step(order_id, "process_payment")
    with timed_holds() as deducting:
        for order_id in ids:
            run_step(order_id, "update_inventory")
    accept, deduct = summarise(accepting), summarise(deducting)
    per_order = accept["hold_ms"] + deduct["hold_ms"]
    return {
        "orders": orders,
        "products": "random" if random_products else "hot",
        "accepting": accept,
        "deducting": deduct,
        "hold_per_order_ms": round(per_order, 3),
        "row_ceiling_per_s": round(1000 / per_order, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--broker", choices=["redis", "orm"], default="redis")
    parser.add_argument("--random", action="store_true", help="random products instead, to compare")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # the stack's environment is set: measure
        import django

        django.setup()
        print("BENCH_JSON " + json.dumps(measure(args.orders, random_products=args.random)))
        return 0
    from bench.stack import run_in_process_on_fresh_database

    module = ["bench.hot_row_hold", "--broker", args.broker, "--orders", str(args.orders)]
    module += ["--random"] if args.random else []
    result = run_in_process_on_fresh_database("hothold", args.broker, module, what="hot row holds")
    print("BENCH_JSON " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
