"""The pipeline's own cost per order, its receipt left out, beside the receipt it is held to.

Run as `python -m bench.pipeline N` with a stack's environment (PostgreSQL, the simulated
gateway, email to files); prints one JSON line. N orders are accepted in this process (not
measured), then each is taken from VALIDATED to COMPLETED by `advance_order`, as a cluster
worker does once it has the order's task: payment, deduction and capture, receipt, email.
Measured per order: this process's CPU and its PostgreSQL backend's CPU, less the CPU spent
inside the receipt renderer (timed around each render). The broker and django-q2's own work
are not in it (the end-to-end scenarios have those).

Issue 23 holds the pipeline to half a receipt: the 2026-11 template (bench/receipts.py) is
rendered here too, between orders, so the ratio is taken in the same run.

Two counts that do not depend on the machine's load are taken after the timed orders, on a
few more with the receipt's rendering replaced by the bytes of one real rendering: the
statements an order sends to the database (everything through Django's cursor: reads,
writes, savepoints, the cache's table on the database broker; not BEGIN and COMMIT), and
the Python calls it makes (cProfile).
"""

import cProfile
import json
import os
import pstats
import statistics
import sys
import time
import uuid

from bench.procfs import cpu_seconds


def main(orders: int) -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.db import connection

    from bench.receipts import render_old_receipt_pdf
    from inventory.models import Product, Stock
    from orders import pipeline
    from orders.models import Order
    from orders.services import place_order
    from receipts import rendering, services

    products = list(Product.objects.filter(active=True).order_by("pk")[:3])
    Stock.objects.filter(product__in=products).update(on_hand=10_000_000, reserved=0)
    render_seconds = [0.0]
    render = rendering.render_receipt_pdf

    def timed_render(document):
        started = time.process_time()
        try:
            return render(document)
        finally:
            render_seconds[0] += time.process_time() - started

    services.render_receipt_pdf = timed_render  # what issue_receipt calls

    def place() -> int:
        return place_order(
            email=f"pipeline-{uuid.uuid4().hex[:8]}@example.com",
            lines=[{"sku": p.sku, "quantity": 1} for p in products],
            payment_method="pm_card_visa",
        ).order.pk

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    for order_id in [place() for _ in range(3)]:  # warm: fonts, templates, first queries
        pipeline.advance_order(order_id)
    document = None
    pending = [place() for _ in range(orders)]

    per_order, receipts, old_receipts = [], [], []
    for order_id in pending:
        render_seconds[0] = 0.0
        python, database = time.process_time(), cpu_seconds(backend)
        pipeline.advance_order(order_id)
        python, database = time.process_time() - python, cpu_seconds(backend) - database
        receipts.append(render_seconds[0])
        per_order.append((python - render_seconds[0], database))
        if document is None:
            order = Order.objects.get(pk=order_id)
            document = services.receipt_document(order, order.receipt)
        started = time.process_time()
        render_old_receipt_pdf(document)
        old_receipts.append(time.process_time() - started)

    statements, calls = _counts(place, pipeline.advance_order, services)
    pending += statements["orders"]
    completed = Order.objects.filter(pk__in=pending, state="COMPLETED").count()
    if completed != len(pending):
        raise SystemExit(f"{len(pending) - completed} of {len(pending)} orders did not complete")
    python_ms = 1000 * sum(p for p, _ in per_order) / len(per_order)
    # The backend's CPU comes in clock ticks: its mean over all orders, not a median of zeros.
    database_ms = 1000 * sum(d for _, d in per_order) / len(per_order)
    old_receipt_ms = 1000 * statistics.median(old_receipts)
    return {
        "orders": len(per_order),
        "pipeline_python_ms": round(python_ms, 2),
        "pipeline_postgres_ms": round(database_ms, 2),
        "pipeline_cpu_ms": round(python_ms + database_ms, 2),
        "receipt_cpu_ms": round(1000 * statistics.median(receipts), 2),
        "old_receipt_cpu_ms": round(old_receipt_ms, 2),
        "pipeline_over_old_receipt": round((python_ms + database_ms) / old_receipt_ms, 3),
        "statements_per_order": statements["per_order"],
        "python_calls_per_order": calls,
    }


COUNTED_ORDERS = 5


def _counts(place, advance, services) -> tuple[dict, int]:
    """Statements and Python calls per order (both deterministic), the receipt's rendering
    replaced by one real rendering's bytes so that neither counts WeasyPrint."""
    from django.db import connection

    render = services.render_receipt_pdf
    rendered: list[bytes] = []

    def once(document):
        if not rendered:
            rendered.append(render(document))
        return rendered[0]

    services.render_receipt_pdf = once
    advance(place())  # renders the one receipt
    orders = [place() for _ in range(2 * COUNTED_ORDERS)]
    sent: list[str] = []

    def count(execute, sql, params, many, context):
        sent.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        for order_id in orders[:COUNTED_ORDERS]:
            advance(order_id)
    profile = cProfile.Profile()
    profile.enable()
    for order_id in orders[COUNTED_ORDERS:]:
        advance(order_id)
    profile.disable()
    services.render_receipt_pdf = render
    calls = sum(row[1] for row in pstats.Stats(profile).stats.values())  # type: ignore[attr-defined]
    return {"orders": orders, "per_order": len(sent) / COUNTED_ORDERS}, round(calls / COUNTED_ORDERS)


if __name__ == "__main__":
    print("BENCH_JSON " + json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)))
