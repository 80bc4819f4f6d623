"""The accepting request's CPU per order in one process, as the shop grows: a quiet
measure for a noisy machine.

    python -m bench.accept_inprocess --broker redis --orders 3000 [--cache redis|database]

Makes the bench's database (bench/database.py), then, in this process with the stack's
settings (bench/stack.py: DEBUG off, the lifted abuse limits, Redis or the database as the
cache), posts `orders` orders through Django's test client, the whole middleware and DRF
included (gunicorn not), from one address as wrk does, and prints one `BENCH_JSON` line with
the process's CPU (`time.process_time`) and its PostgreSQL backend's CPU (/proc) per order,
for each slice of `--slice` orders in turn. A cost that grows with what came before (the
rate limits' window, the orders held unpaid, a table's size) shows as slices that grow; a
process's own CPU time is little moved by other work on the machine, so two commits compare
by running this in each tree in turn. `--cache` puts the rate limits' counts in the other
shared cache than the broker's stack would (Redis with the database broker, the database
with Redis), which splits a broker's cost from its cache's.
"""

import argparse
import json
import sys
import time

from bench.procfs import cpu_seconds

# As bench/database.py seeds them; not imported from there: bench.database sets Django up for
# the bench's own driver, and the child process here must set it up with the stack's settings.
PRODUCTS = 1000


def post_order(client, n: int, sku: str, *, key: str) -> None:
    """Post the `n`th order of a run, one unit of `sku`, from the email and the address
    bench/orders.lua would send it from, through Django's test `client`; it must be accepted."""
    body = {"email": f"shopper{n % 1000}@example.com", "lines": [{"sku": sku, "quantity": 1}]}
    body["payment_method"] = "pm_card_visa"
    answer = client.post(
        "/api/orders/",
        json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=key,
        HTTP_X_FORWARDED_FOR=f"10.0.{(n % 997) // 250}.{(n % 997) % 250 + 1}",  # as bench/orders.lua
    )
    if answer.status_code != 202:
        raise RuntimeError(f"order {n}: {answer.status_code} {answer.content[:300]!r}")


def post_orders(orders: int, slice_size: int) -> list[dict]:
    """Post `orders` orders (random products, 1,000 emails and 997 addresses in turn, a fresh
    Idempotency-Key each), timing each slice; the Django settings must be set up already."""
    import random

    from django.db import connection
    from django.test import Client

    client = Client()
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    slices = []
    for start in range(0, orders, slice_size):
        cpu, db_cpu = time.process_time(), cpu_seconds(backend)
        for n in range(start, start + slice_size):
            post_order(client, n, f"BENCH-{random.randint(1, PRODUCTS):04d}", key=f"in-{n}")
        slices.append(
            {
                "after": start,
                "python_ms": round(1000 * (time.process_time() - cpu) / slice_size, 3),
                "postgres_ms": round(1000 * (cpu_seconds(backend) - db_cpu) / slice_size, 3),
            }
        )
    return slices


def caches_for(cache: str) -> dict:
    """The settings that put the default cache in `cache` ("stack": as the stack set it)."""
    from django.conf import settings

    from bench.stack import REDIS_BASE
    from config.settings.cache import DATABASE_CACHE_OPTIONS

    if cache == "redis":
        default = {"BACKEND": "framework.redis_cache.SharedClientRedisCache", "LOCATION": REDIS_BASE}
        return {"CACHES": {**settings.CACHES, "default": {**default, "KEY_PREFIX": "cache"}}}
    if cache == "database":
        default = {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_cache"}
        return {"CACHES": {**settings.CACHES, "default": {**default, "OPTIONS": DATABASE_CACHE_OPTIONS}}}
    return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=["redis", "orm"], default="redis")
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--slice", type=int, default=500)
    parser.add_argument("--cache", choices=["stack", "redis", "database"], default="stack")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # the stack's environment is set: measure
        import django
        from django.test.utils import override_settings

        django.setup()
        with override_settings(**caches_for(args.cache)):
            slices = post_orders(args.orders, args.slice)
        print("BENCH_JSON " + json.dumps({"broker": args.broker, "cache": args.cache, "slices": slices}))
        return 0
    from bench.stack import run_in_process_on_fresh_database

    module = ["bench.accept_inprocess", "--broker", args.broker, "--orders", str(args.orders)]
    module += ["--slice", str(args.slice), "--cache", args.cache]
    result = run_in_process_on_fresh_database("inprocess", args.broker, module, what="in-process accepts")
    print("BENCH_JSON " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
