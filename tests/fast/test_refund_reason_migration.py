"""Refunds made before reasons existed are filed under "other" by the migrations, on PostgreSQL."""

from decimal import Decimal

from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from orders.models import Order

BEFORE = [("payments", "0004_payment_status_updated_index")]


def test_refunds_made_before_reasons_existed_are_filed_under_other(transactional_db):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    order = Order.objects.create(
        email="old@example.com", currency="USD", subtotal=Decimal("25.00"), total=Decimal("25.00"), request_hash="x"
    )
    payment = old.get_model("payments", "Payment").objects.create(
        order_id=order.pk, provider="simulated", amount=Decimal("25.00"), currency="USD", status="partially_refunded"
    )
    old.get_model("payments", "Refund").objects.create(
        order_id=order.pk, payment_id=payment.pk, amount=Decimal("5.00"), currency="USD", requested_by="lee"
    )

    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    from payments.models import Refund

    refund = Refund.objects.get()
    assert (refund.reason_code_id, refund.reason_code.label) == ("other", "Other")
