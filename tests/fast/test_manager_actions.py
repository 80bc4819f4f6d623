"""A manager's actions on an order (backoffice.actions): redrive, retry, resend,
regenerate, refund with or without a return, cancel, notes, bulk; each once per form."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from backoffice import actions, plans
from backoffice.actions import ActionRefused
from orders.models import EventKind, Order, OrderEvent
from payments.models import Payment, Refund, SimulatedPaymentIntent
from receipts.models import Receipt
from tests.support.invariants import charged_intents, history, sales_in_ledger, stock_of

pytestmark = pytest.mark.usefixtures("stock_invariants_hold")


def failed_while_gateway_down(shopper, make_product, *, on_hand=5) -> Order:
    make_product("MUG-001", on_hand=on_hand)
    order = shopper.buys({"MUG-001": 2}, pay_with="pm_sim_unavailable")
    order.refresh_from_db()
    assert order.state == "FAILED"
    return order


def test_a_failed_order_redriven_after_the_gateway_is_back_completes_with_one_charge_receipt_and_confirmation(
    shopper, make_product, settings
):
    order = failed_while_gateway_down(shopper, make_product)
    settings.SIMULATED_GATEWAY_OUTAGE = False  # the provider is back

    plan = plans.plan_redrive(order)
    result = actions.redrive_order(order, manager="boss", reason="Provider outage over", action_token="t1")

    assert plan.refusal == "" and plan.failed_step == "process_payment"
    assert [(s.step, s.runs) for s in plan.steps] == [
        ("validate_order", False),
        ("process_payment", True),
        ("update_inventory", True),
        ("generate_receipt", True),
        ("send_notification", True),
    ]
    assert "redriven from process_payment (redrive #1)" in result.message
    order.refresh_from_db()
    assert (order.state, order.redrive_count, order.failure_reason) == ("COMPLETED", 1, "")
    assert charged_intents() == 1
    assert order.payment.status == Payment.Status.CAPTURED
    assert Receipt.objects.filter(order=order, stored_at__isnull=False).count() == 1
    assert [m.subject for m in mail.outbox] == [
        f"We could not process your order {order.reference}",
        f"Your order {order.reference} is confirmed",
    ]
    redriven = order.events.get(kind=EventKind.REDRIVEN)
    assert (redriven.actor_kind, redriven.actor, redriven.parameters["reason"]) == (
        "manager",
        "boss",
        "Provider outage over",
    )
    after = [step for step, *_ in history(order)[history(order).index(("redrive_order", "succeeded", 1, "")) :]]
    assert "validate_order" not in after  # a step that succeeded is not run again
    stock = stock_of("MUG-001")
    assert (stock.on_hand, stock.reserved) == (3, 0)


def test_the_demo_outage_ends_after_its_time_so_a_redrive_then_completes_the_order(shopper, make_product, settings):
    settings.SIMULATED_GATEWAY_OUTAGE_SECONDS = 60  # SIMULATED_GATEWAY_OUTAGE left on, as `make run` has it
    order = failed_while_gateway_down(shopper, make_product)

    actions.redrive_order(order, manager="boss", reason="too soon", action_token="t1")
    order.refresh_from_db()
    assert order.state == "FAILED", "the provider is still down for this order"

    an_outage_ago = timezone.now() - timedelta(seconds=61)
    SimulatedPaymentIntent.objects.update(created_at=an_outage_ago)  # as if a minute went by
    actions.redrive_order(order, manager="boss", reason="provider back", action_token="t2")

    order.refresh_from_db()
    assert (order.state, order.redrive_count) == ("COMPLETED", 2)
    assert charged_intents() == 1


def test_a_redrive_is_refused_with_the_reason_when_the_stock_is_gone(shopper, make_product, settings):
    order = failed_while_gateway_down(shopper, make_product, on_hand=2)
    settings.SIMULATED_GATEWAY_OUTAGE = False
    shopper.buys({"MUG-001": 2}, email="quicker@example.com")

    with pytest.raises(ActionRefused, match=r"Not enough stock: MUG-001: 2 requested, 0 available\."):
        actions.redrive_order(order, manager="boss", reason="retry", action_token="t1")

    order.refresh_from_db()
    assert (order.state, order.redrive_count) == ("FAILED", 0)
    assert stock_of("MUG-001").reserved == 0
    assert not order.events.filter(kind=EventKind.REDRIVEN).exists()


def test_a_redrive_posted_twice_runs_once(shopper, make_product, settings):
    order = failed_while_gateway_down(shopper, make_product)
    settings.SIMULATED_GATEWAY_OUTAGE = False

    actions.redrive_order(order, manager="boss", reason="back", action_token="t1")
    again = actions.redrive_order(order, manager="boss", reason="back", action_token="t1")

    assert again.already_done
    with pytest.raises(ActionRefused, match="is COMPLETED: only a FAILED order can be redriven"):
        actions.redrive_order(order, manager="boss", reason="back", action_token="t2")
    order.refresh_from_db()
    assert order.redrive_count == 1 and charged_intents() == 1


def test_a_redriven_order_that_fails_again_is_compensated_again_and_keeps_no_charge(shopper, make_product):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 2}, pay_with="pm_sim_capture_unavailable")  # every capture fails

    plan = plans.plan_redrive(order)
    actions.redrive_order(order, manager="boss", reason="try once more", action_token="t1")

    assert plan.failed_step == "update_inventory"
    assert [s.step for s in plan.steps if s.runs][0] == "process_payment"  # its hold was voided: asked again
    order.refresh_from_db()
    assert (order.state, order.redrive_count) == ("FAILED", 1)
    assert sales_in_ledger(order) == [("sale", -2), ("return", 2), ("sale", -2), ("return", 2)]
    assert SimulatedPaymentIntent.objects.count() == 2  # a fresh authorisation, under a new key
    assert charged_intents() == 0
    assert order.payment.status == Payment.Status.VOIDED
    stock = stock_of("MUG-001")
    assert (stock.on_hand, stock.reserved) == (5, 0)


def test_the_second_redrive_is_recorded_as_the_second_attempt_its_message_names(shopper, make_product):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 2}, pay_with="pm_sim_capture_unavailable")  # fails after every redrive

    first = actions.redrive_order(order, manager="boss", reason="try once more", action_token="t1")
    second = actions.redrive_order(order, manager="boss", reason="and again", action_token="t2")

    assert "(redrive #1)" in first.message and "(redrive #2)" in second.message
    redrives = order.events.filter(step="redrive_order").order_by("id")
    assert [(e.kind, e.attempt) for e in redrives] == [
        (EventKind.REDRIVEN, 1),
        (EventKind.STATE_CHANGED, 1),
        (EventKind.REDRIVEN, 2),
        (EventKind.STATE_CHANGED, 2),
    ]
    assert [e.parameters["redrive"] for e in redrives if e.kind == EventKind.REDRIVEN] == [1, 2]


def test_a_redrive_is_refused_past_the_redrive_window(shopper, make_product, settings):
    order = failed_while_gateway_down(shopper, make_product)
    OrderEvent.objects.filter(order=order).update(created_at=timezone.now() - timedelta(days=15))
    settings.ORDER_REDRIVE_DAYS = 14

    with pytest.raises(ActionRefused, match="more than 14 days ago: too late to redrive"):
        actions.redrive_order(order, manager="boss", reason="late", action_token="t1")


def test_a_redrive_waits_for_the_compensation_of_the_failure(shopper, make_product, held_pipeline):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 2}, pay_with="pm_sim_unavailable")
    held_pipeline.run_by_hand(order, "process_payment")  # fails the order; its compensation stays queued
    order.refresh_from_db()
    assert order.state == "FAILED"

    with pytest.raises(ActionRefused, match="compensation has not settled"):
        actions.redrive_order(order, manager="boss", reason="now", action_token="t1")


def confirmed_and_stuck(shopper, make_product, held_pipeline) -> Order:
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 2})
    held_pipeline.run_by_hand(order, "process_payment", "update_inventory")
    order.refresh_from_db()
    assert order.state == "CONFIRMED"
    return order


def test_retrying_the_stuck_step_of_an_overdue_order_queues_it_once_per_form(
    shopper, make_product, held_pipeline, settings
):
    order = confirmed_and_stuck(shopper, make_product, held_pipeline)
    settings.ORDER_STUCK_AFTER_SECONDS = 0

    actions.retry_stuck_step(order, manager="boss", reason="stuck", action_token="t1")
    actions.retry_stuck_step(order, manager="boss", reason="stuck", action_token="t1")

    assert held_pipeline.queued() == [("orders.tasks.advance_order", (order.pk,))]
    [event] = order.events.filter(kind=EventKind.STEP_RETRY_REQUESTED)
    assert event.parameters["retried_step"] == "generate_receipt"


def test_an_order_with_nothing_stuck_has_no_step_to_retry(shopper, make_product):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1})

    with pytest.raises(ActionRefused, match="has no stuck step to retry"):
        actions.retry_stuck_step(order, manager="boss", reason="why not", action_token="t1")


def test_a_resent_confirmation_is_a_new_email_marked_as_a_copy_once_per_form(shopper, make_product):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1})

    actions.resend_confirmation(order, manager="boss", reason="shopper lost it", action_token="t1")
    again = actions.resend_confirmation(order, manager="boss", reason="shopper lost it", action_token="t1")
    actions.resend_confirmation(order, manager="boss", reason="lost it again", action_token="t2")

    assert again.already_done
    assert [m.subject for m in mail.outbox] == [f"Your order {order.reference} is confirmed"] + 2 * [
        f"Your order {order.reference} is confirmed (copy sent again)"
    ]
    assert "A copy of your order confirmation" in mail.outbox[1].body
    assert mail.outbox[1].extra_headers["Message-ID"] != mail.outbox[2].extra_headers["Message-ID"]
    assert order.events.filter(kind=EventKind.EMAIL_RESENT).count() == 2


def test_a_missing_receipt_is_regenerated_and_a_stored_one_never_replaced(shopper, make_product, held_pipeline):
    order = confirmed_and_stuck(shopper, make_product, held_pipeline)
    held_pipeline.run_inline()

    actions.regenerate_receipt(order, manager="boss", reason="storage was down", action_token="t1")

    order.refresh_from_db()
    receipt = Receipt.objects.get(order=order)
    assert receipt.stored_at is not None
    assert order.state == "COMPLETED"  # it went on to the confirmation email
    with pytest.raises(ActionRefused, match=f"has its receipt {receipt.number} stored; a stored receipt is never"):
        actions.regenerate_receipt(order, manager="boss", reason="again", action_token="t2")
    assert Receipt.objects.get(order=order).storage_key == receipt.storage_key


def test_a_partial_refund_can_put_units_back_in_stock_through_the_ledger_and_emails_the_shopper(shopper, make_product):
    mug = make_product("MUG-001", price="12.50", on_hand=5)
    order = shopper.buys({"MUG-001": 2})

    result = actions.refund_order(
        order,
        manager="boss",
        reason="one mug came back chipped",
        refund_reason="damaged",
        amount=Decimal("12.50"),
        return_units={mug.pk: 1},
        action_token="t1",
    )
    again = actions.refund_order(
        order,
        manager="boss",
        reason="dup",
        refund_reason="damaged",
        amount=Decimal("12.50"),
        return_units={mug.pk: 1},
        action_token="t1",
    )

    assert "refund of 12.50 USD requested, 1 unit back in stock" in result.message and again.already_done
    order.refresh_from_db()
    assert (order.payment.status, order.payment.amount_refunded) == ("partially_refunded", Decimal("12.50"))
    assert Refund.objects.get().status == "succeeded"
    assert sales_in_ledger(order) == [("sale", -2), ("return", 1)]
    assert stock_of("MUG-001").on_hand == 4
    refund_email = mail.outbox[-1]
    assert refund_email.subject == f"A refund for your order {order.reference}"
    assert "We have refunded 12.50 USD" in refund_email.body and "Reason: Damaged" in refund_email.body
    with pytest.raises(ActionRefused, match="MUG-001 can take back between 0 and 1 units"):
        actions.refund_order(
            order, manager="boss", reason="more", refund_reason="damaged", return_units={mug.pk: 2}, action_token="t2"
        )


def test_a_refund_without_a_return_leaves_the_stock_as_it_is(shopper, make_product):
    make_product("MUG-001", price="12.50", on_hand=5)
    order = shopper.buys({"MUG-001": 2})

    actions.refund_order(
        order,
        manager="boss",
        reason="late delivery",
        refund_reason="goodwill",
        amount=Decimal("5.00"),
        action_token="t1",
    )

    assert sales_in_ledger(order) == [("sale", -2)]
    assert stock_of("MUG-001").on_hand == 3


def test_a_manager_cancels_with_a_reason_the_shopper_reads_and_a_second_click_is_refused(
    shopper, make_product, held_pipeline
):
    order = confirmed_and_stuck(shopper, make_product, held_pipeline)
    held_pipeline.run_inline()

    plan = plans.plan_cancel(order)
    actions.cancel_order_for_manager(order, manager="boss", reason="Out of our hands, sorry.")

    assert plan.money.startswith("Refunds 25.00 USD captured") and plan.stock.startswith("Returns 2 x MUG-001")
    order.refresh_from_db()
    assert (order.state, order.failure_reason) == ("CANCELLED", "Out of our hands, sorry.")
    assert mail.outbox[-1].subject == f"Your order {order.reference} has been cancelled"
    with pytest.raises(ActionRefused, match="is CANCELLED and cannot be cancelled"):
        actions.cancel_order_for_manager(order, manager="boss", reason="again")
    with pytest.raises(ActionRefused, match="Give a reason"):
        actions.cancel_order_for_manager(order, manager="boss", reason="  ")


def test_a_managers_cancel_is_recorded_as_succeeded_with_the_reason(shopper, make_product, held_pipeline):
    order = confirmed_and_stuck(shopper, make_product, held_pipeline)
    held_pipeline.run_inline()

    actions.cancel_order_for_manager(order, manager="boss", reason="Out of our hands, sorry.")

    cancelled = order.events.get(step="cancel_order")
    assert (cancelled.outcome, cancelled.actor, cancelled.to_state) == ("succeeded", "boss", "CANCELLED")
    assert cancelled.error == "Out of our hands, sorry."


def test_a_note_goes_into_the_history_once_per_form(shopper, make_product):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1})

    actions.add_note(order, manager="boss", note="Shopper called, all fine.", action_token="t1")
    actions.add_note(order, manager="boss", note="Shopper called, all fine.", action_token="t1")

    [note] = order.events.filter(kind=EventKind.NOTE_ADDED)
    assert (note.summary, note.actor) == ("Shopper called, all fine.", "boss")


def test_a_bulk_redrive_acts_on_at_most_the_cap_per_click(shopper, make_product, settings):
    make_product("MUG-001", on_hand=10)
    orders = [shopper.buys({"MUG-001": 1}, pay_with="pm_sim_unavailable") for _ in range(3)]
    settings.SIMULATED_GATEWAY_OUTAGE = False
    settings.ORDER_BULK_ACTION_CAP = 2

    results, left = actions.act_on_orders(
        actions.redrive_order, orders, manager="boss", reason="outage over", action_token="t1"
    )

    assert len(results) == 2 and left == orders[2:]
    states = sorted(Order.objects.values_list("state", flat=True))
    assert states == ["COMPLETED", "COMPLETED", "FAILED"]
