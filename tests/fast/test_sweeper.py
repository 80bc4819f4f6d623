"""The sweeper (orders.tasks.sweep_stuck_orders): a lost queue message delays an order, never loses it.

Messages are "lost" by holding the queue (`held_pipeline`) and deleting what was queued;
an order is made "stuck" by ageing its `updated_at` past ORDER_STUCK_AFTER_SECONDS.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from orders.models import Order, OrderEvent
from orders.pipeline import run_step
from orders.tasks import sweep_stuck_orders
from payments.models import SimulatedPaymentIntent
from receipts.models import Receipt
from tests.support.invariants import stock_of

# Every scenario ends with the ledger summing to on hand and no stock below zero.
pytestmark = pytest.mark.usefixtures("stock_invariants_hold")


def age(order: Order) -> None:
    """Make the order look untouched for longer than the sweeper waits."""
    stale = timezone.now() - timedelta(seconds=settings.ORDER_STUCK_AFTER_SECONDS + 5)
    Order.objects.filter(pk=order.pk).update(updated_at=stale)


def test_an_order_whose_first_message_was_lost_is_re_driven_to_completion(make_product, shopper, held_pipeline):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 2})
    assert held_pipeline.lose_queued() == 1
    age(order)
    held_pipeline.run_inline()

    swept = sweep_stuck_orders()

    assert swept == 1
    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert SimulatedPaymentIntent.objects.get().status == "succeeded"
    assert Receipt.objects.filter(order=order).count() == 1
    assert len(mail.outbox) == 1
    assert stock_of("MUG-001").on_hand == 3


def test_an_order_stopped_between_steps_is_finished_with_one_charge_one_receipt_one_email(
    make_product, shopper, held_pipeline
):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 2})
    held_pipeline.run_by_hand(order, "validate_order", "process_payment")
    age(order)
    held_pipeline.run_inline()

    sweep_stuck_orders()

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert SimulatedPaymentIntent.objects.count() == 1
    assert Receipt.objects.count() == 1
    assert len(mail.outbox) == 1


def test_recent_orders_are_left_to_the_queue(make_product, shopper, held_pipeline):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 2})
    held_pipeline.lose_queued()
    held_pipeline.run_inline()

    swept = sweep_stuck_orders()

    assert swept == 0
    order.refresh_from_db()
    assert order.state == "VALIDATED"
    assert [e.step for e in OrderEvent.objects.filter(order=order)] == ["validate_order"]


def test_sweeping_finished_orders_again_does_nothing(make_product, shopper):
    make_product("MUG-001", on_hand=5)
    completed = shopper.buys({"MUG-001": 1})
    declined = shopper.buys({"MUG-001": 1}, pay_with="pm_card_chargeDeclined")
    for order in (completed, declined):
        age(order)
    events_before = OrderEvent.objects.count()

    assert sweep_stuck_orders() == 0

    assert OrderEvent.objects.count() == events_before
    assert len(mail.outbox) == 2


def test_a_failed_order_whose_compensation_and_email_were_lost_is_settled_and_told(
    make_product, shopper, held_pipeline
):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 2}, pay_with="pm_sim_capture_unavailable")
    for step in ("validate_order", "process_payment", "update_inventory"):
        held_pipeline.lose_queued()
        run_step(order.pk, step)
    order.refresh_from_db()
    assert order.state == "FAILED"
    assert SimulatedPaymentIntent.objects.get().status == "requires_capture"  # the hold is still on the card
    held_pipeline.lose_queued()
    age(order)
    held_pipeline.run_inline()

    swept = sweep_stuck_orders()

    assert swept == 2
    assert SimulatedPaymentIntent.objects.get().status == "canceled"
    order.refresh_from_db()
    assert order.payment.status == "voided"
    assert len(mail.outbox) == 1
    assert stock_of("MUG-001").on_hand == 5
