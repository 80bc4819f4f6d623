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
"""

import json
import os
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

    completed = Order.objects.filter(pk__in=pending, state="COMPLETED").count()
    if completed != len(pending):
        raise SystemExit(f"{len(pending) - completed} of {len(pending)} orders did not complete")
    python_ms = 1000 * sum(p for p, _ in per_order) / len(per_order)
    # The backend's CPU comes in clock ticks: its mean over all orders, not a median of zeros.
    database_ms = 1000 * sum(d for _, d in per_order) / len(per_order)
    old_receipt_ms = 1000 * statistics.median(old_receipts)
    return {
        "orders": len(pending),
        "pipeline_python_ms": round(python_ms, 2),
        "pipeline_postgres_ms": round(database_ms, 2),
        "pipeline_cpu_ms": round(python_ms + database_ms, 2),
        "receipt_cpu_ms": round(1000 * statistics.median(receipts), 2),
        "old_receipt_cpu_ms": round(old_receipt_ms, 2),
        "pipeline_over_old_receipt": round((python_ms + database_ms) / old_receipt_ms, 3),
    }


if __name__ == "__main__":
    print("BENCH_JSON " + json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)))
