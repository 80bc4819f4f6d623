"""Python calls per accepted order, by part of the accepting request: a deterministic measure
of where the accept path's CPU goes, which a loaded machine does not blur.

    python -m bench.accept_calls --database orders_calls [--orders 200] [--broker redis]

Migrates and seeds the named database (dropped and made anew: 1,000 products of plenty of
stock, as bench/database.py seeds them), then, in a child process with the bench stack's
settings (bench/stack.py's `stack_env`: DEBUG off, the lifted abuse limits, the Redis cache
and broker or the database's), posts `--warm` orders untraced and `--orders` orders through
Django's test client (the whole middleware and DRF, gunicorn not) under a profiling hook
(`sys.setprofile`) that counts every Python function call and every call of a C function,
each charged to the innermost part of the request running it (a middleware, the rate limits,
DRF's validation, a part of `place_order`, the commit, the enqueue, logging ...). The counts
are the same from run to run on the same tree and data, so two commits compare by running
this in each (`cd <tree> && python <this file>` works for a tree without it: the script
needs only the tree's own Django project). Prints a table and one `BENCH_JSON` line.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
PRODUCTS = 1000

# (file path ending, qualified name or "*") -> the part of the request it is charged to. A
# call is charged to the innermost part on the stack, so the parts add up to the whole.
PARTS: list[tuple[str, str, str]] = [
    ("django/test/client.py", "*", "test client (not in production)"),
    ("django/core/handlers/base.py", "BaseHandler._get_response", "Django: URL resolving, view call"),
    ("rest_framework/views.py", "APIView.dispatch", "DRF: dispatch, request, auth, negotiation"),
    ("rest_framework/request.py", "Request._load_data_and_files", "DRF: parse the JSON body"),
    ("rest_framework/views.py", "APIView.check_throttles", "rate limits (throttle/counter)"),
    ("orders/apis.py", "PlaceOrderApi.check_throttles", "rate limits (throttle/counter)"),
    ("framework/throttling.py", "*", "rate limits (throttle/counter)"),
    ("orders/apis.py", "PlaceOrderApi.post", "view: post (own)"),
    ("orders/apis.py", "PlaceOrderApi.read_along", "rate limits (throttle/counter)"),
    ("orders/apis.py", "PlacementByAddressThrottle.read_along", "rate limits (throttle/counter)"),
    ("orders/apis.py", "PlacementByEmailThrottle.read_along", "rate limits (throttle/counter)"),
    ("rest_framework/serializers.py", "BaseSerializer.is_valid", "DRF: validate the body"),
    ("rest_framework/serializers.py", "Serializer.fields", "DRF: build serializer fields"),
    ("rest_framework/serializers.py", "BaseSerializer.__init__", "DRF: build serializer fields"),
    ("rest_framework/serializers.py", "BaseSerializer.__new__", "DRF: build serializer fields"),
    ("rest_framework/serializers.py", "ListSerializer.__init__", "DRF: build serializer fields"),
    ("rest_framework/fields.py", "Field.__new__", "DRF: build serializer fields"),
    ("rest_framework/fields.py", "Field.__deepcopy__", "DRF: build serializer fields"),
    ("rest_framework/serializers.py", "Serializer.data", "DRF: output serializer"),
    ("rest_framework/response.py", "Response.rendered_content", "DRF: render the response"),
    ("orders/apis.py", "_status_url", "view: status URL (reverse)"),
    ("orders/services.py", "place_order", "place_order: own (hash, totals)"),
    # The order's model and its transaction; the insert itself is set_state's (a new order is
    # written with its first move).
    ("orders/services.py", "_write_and_validate", "place_order: the order's model, transaction"),
    ("orders/services.py", "_priced_lines", "place_order: read and price products"),
    ("payments/services.py", "check_payment_method", "place_order: payment method check"),
    ("orders/reservations.py", "check_units_held", "cap: held units read"),
    ("orders/reservations.py", "check_lapse_wait", "cap: held units read"),
    ("framework/log_context.py", "*", "log context"),
    ("orders/steps.py", "validate_taking_stock_last", "validate step (own)"),
    ("orders/steps.py", "reserve_or_reject", "validate step (own)"),
    ("orders/steps.py", "record_units_left", "validate step (own)"),
    ("orders/pipeline.py", "reserve_or_reject", "validate step (own)"),
    ("inventory/services.py", "reserve_stock", "reserve/take stock"),
    ("inventory/services.py", "take_stock", "reserve/take stock"),
    ("inventory/services.py", "_announce_low_stock", "reserve/take stock"),
    ("orders/transitions.py", "set_state", "set_state + history"),
    ("orders/pipeline.py", "set_state", "set_state + history"),
    ("orders/pipeline.py", "StepRun.record", "set_state + history"),
    ("orders/history.py", "*", "set_state + history"),
    ("django/db/transaction.py", "Atomic.__exit__", "commit (transaction exit)"),
    ("orders/pipeline.py", "enqueue_advance", "enqueue"),
    ("orders/pipeline.py", "enqueue", "enqueue"),
    ("framework/queue.py", "*", "enqueue"),
    ("framework/metrics.py", "*", "metrics"),
    ("prometheus_client/", "*", "metrics"),
    ("logging/__init__.py", "Logger._log", "logging (records formatted)"),
    ("logging/__init__.py", "Logger.handle", "logging (records formatted)"),
    ("django/core/handlers/base.py", "reset_urlconf", "Django: request signals"),
    ("django/db/__init__.py", "close_old_connections", "Django: request signals"),
    ("django/db/__init__.py", "reset_queries", "Django: request signals"),
]


def part_of(code) -> str | None:
    """The part a code object is charged to, or None (charged to its caller's part)."""
    filename, qualname = code.co_filename, code.co_qualname
    for ending, name, part in PARTS:
        if (ending in filename) and (name == "*" or name == qualname):
            return part
    if qualname.endswith("<locals>.middleware"):  # a function middleware
        return "middleware: " + qualname.split(".")[0]
    return None


def count_calls(post, orders: int) -> tuple[dict[str, dict[str, int]], float]:
    """Run `post(n)` for n in range(orders) under the counting hook: calls per part."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"python": 0, "c": 0})
    parts_of: dict = {}
    stack: list = []  # (frame, part)
    top = ["request (Django handler and the rest)"]
    middleware_call = "__call__"

    def hook(frame, event, arg):
        if event == "call":
            code = frame.f_code
            part = parts_of.get(code, False)
            if part is False:
                part = parts_of[code] = part_of(code)
            if part is None and code.co_name == middleware_call:
                owner = frame.f_locals.get("self")
                name = type(owner).__name__ if owner is not None else ""
                if name.endswith("Middleware"):
                    part = "middleware: " + name
            if part is not None:
                stack.append((frame, part))
                top[0] = part
            counts[top[0]]["python"] += 1
        elif event == "return":
            if stack and stack[-1][0] is frame:
                stack.pop()
                top[0] = stack[-1][1] if stack else "request (Django handler and the rest)"
        elif event == "c_call":
            counts[top[0]]["c"] += 1

    started = time.process_time()
    sys.setprofile(hook)
    try:
        for n in range(orders):
            post(n)
    finally:
        sys.setprofile(None)
    return {k: dict(v) for k, v in counts.items()}, time.process_time() - started


def child(orders: int, warm: int, timed: bool = False) -> dict:
    """In the stack's settings: post `warm` orders, then `orders` counted (or, `timed`, only
    timed: this process's CPU per order, without the counting hook's own cost)."""
    import random

    import django

    django.setup()
    from django.test import Client

    random.seed(23)
    client = Client()

    def post(n: int) -> None:
        body = {
            "email": f"shopper{n % 1000}@example.com",
            "lines": [{"sku": f"BENCH-{random.randint(1, PRODUCTS):04d}", "quantity": 1}],
            "payment_method": "pm_card_visa",
        }
        answer = client.post(
            "/api/orders/",
            json.dumps(body),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=f"calls-{n}-{orders}",
            HTTP_X_FORWARDED_FOR=f"10.0.{(n % 997) // 250}.{(n % 997) % 250 + 1}",
        )
        if answer.status_code != 202:
            raise RuntimeError(f"order {n}: {answer.status_code} {answer.content[:300]!r}")

    for n in range(warm):
        post(100_000 + n)
    if timed:
        started = time.process_time()
        for n in range(orders):
            post(n)
        return {"orders": orders, "cpu_ms_per_order": round(1000 * (time.process_time() - started) / orders, 3)}
    counts, cpu = count_calls(post, orders)
    per_order = {
        part: {"python": round(c["python"] / orders, 1), "c": round(c["c"] / orders, 1)}
        for part, c in sorted(counts.items(), key=lambda kv: -kv[1]["python"])
    }
    return {"orders": orders, "per_order": per_order, "traced_cpu_s": round(cpu, 2)}


def seed(database: str, tree: Path) -> None:
    """Drop and make the database, migrate it with the tree's own migrations, seed products."""
    import psycopg

    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    env = settings_env(database, "orm")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=tree, env=env, check=True, capture_output=True
    )
    with psycopg.connect(f"{PG_URL}/{database}", autocommit=True) as conn:
        columns = {
            row[0]
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'inventory_product'"
            )
        }
        extra = ", low_stock_threshold" if "low_stock_threshold" in columns else ""
        extra_value = ", 5" if extra else ""
        conn.execute(
            f"INSERT INTO inventory_product (sku, name, price, currency, active, created_at{extra}) "
            f"SELECT format('BENCH-%s', lpad(n::text, 4, '0')), format('Bench product %s', n), "
            f"(5 + n % 50)::numeric + 0.99, 'USD', true, now(){extra_value} FROM generate_series(1, {PRODUCTS}) AS n"
        )
        conn.execute(
            "INSERT INTO inventory_stock (product_id, on_hand, reserved) SELECT id, 100000000, 0 FROM inventory_product"
        )
        conn.execute(
            "INSERT INTO inventory_stockmovement (product_id, quantity, reason, note, created_at) "
            "SELECT product_id, on_hand, 'import', 'bench', now() FROM inventory_stock"
        )
        conn.execute("VACUUM ANALYZE")


def settings_env(database: str, broker: str) -> dict[str, str]:
    """bench/stack.py's stack environment, written out so that an older tree runs it too."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "Q_", "DATABASE_", "REDIS_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="bench-accept-calls-" + "k" * 40,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        DATABASE_URL=f"{PG_URL}/{database}",
        DATABASE_CONN_MAX_AGE="600",
        VAR_DIR=f"/tmp/bench-accept-calls-{database}",
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=f"/tmp/bench-accept-calls-{database}/emails",
        PAYMENT_GATEWAY="simulated",
        THROTTLE_ORDER_PLACEMENT_PER_ADDRESS="100000000/min",
        THROTTLE_ORDER_PLACEMENT_PER_EMAIL="100000000/min",
        THROTTLE_ORDER_LOOKUP="100000000/min",
        HELD_UNITS_PER_CLIENT="100000000",
        SHOP_MAX_UNPAID_SHARE="1",
        SHOP_HOLD_LAPSE_WAIT_SECONDS="0",
        FAILURE_EMAILS_PER_ADDRESS_PER_HOUR="100000000",
        FRAMEWORK_FLOOR_ENDPOINT="1",
        TRUSTED_PROXY_COUNT="1",
        Q_CLUSTER_NAME=f"calls_{database}",
        LOG_LEVEL="WARNING",
        PYTHONDONTWRITEBYTECODE="1",
    )
    if broker == "redis":
        env["REDIS_URL"] = REDIS_URL
    return env


def print_table(result: dict) -> None:
    rows = result["per_order"]
    width = max(len(part) for part in rows)
    print(f"{'part':<{width}}  python calls  C calls  (per accepted order, {result['orders']} orders)")
    for part, c in rows.items():
        print(f"{part:<{width}}  {c['python']:>12}  {c['c']:>7}")
    total_py = sum(c["python"] for c in rows.values())
    total_c = sum(c["c"] for c in rows.values())
    print(f"{'total':<{width}}  {total_py:>12.1f}  {total_c:>7.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="a database of its own: dropped and made anew")
    parser.add_argument("--broker", choices=["redis", "orm"], default="redis")
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--warm", type=int, default=30)
    parser.add_argument("--timed", action="store_true", help="CPU per order instead of the counts (noisy)")
    parser.add_argument("--keep", action="store_true", help="keep the database (and its orders) afterwards")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    tree = Path.cwd()
    if args.child:
        sys.path.insert(0, str(tree))
        print("BENCH_JSON " + json.dumps(child(args.orders, args.warm, args.timed)))
        return 0
    seed(args.database, tree)
    try:
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", "--database", args.database]
            + ["--broker", args.broker, "--orders", str(args.orders), "--warm", str(args.warm)]
            + (["--timed"] if args.timed else []),
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
        if not args.keep:
            import psycopg

            with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
    result["broker"] = args.broker
    if args.timed:
        print(f"{result['cpu_ms_per_order']} ms of this process's CPU per accepted order ({args.orders} orders)")
    else:
        print_table(result)
    print("BENCH_JSON " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
