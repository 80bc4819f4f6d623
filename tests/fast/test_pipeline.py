"""The order pipeline: every outcome of DESIGN.md's state machine, with its history.

Orders are placed over the API and run inline (conftest's `_fast_pipeline`); tests that need
an order between steps hold the queue (`held_pipeline`) and run the steps themselves.
"""

import pydoc

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection

from framework.queue import Task
from orders import pipeline
from orders.flow import STEPS
from orders.history import start_run
from orders.models import Order, OrderEvent, OrderState
from orders.pipeline import run_step
from orders.services import cancel_order
from orders.transitions import TRANSITIONS, IllegalTransition, set_state
from payments.gateways.simulated import SimulatedGateway
from payments.models import Payment, SimulatedPaymentIntent
from receipts.models import Receipt
from tests.support.invariants import charged_intents, history, row_counts, sales_in_ledger, stock_of

# Every scenario ends with the ledger summing to on hand and no stock below zero.
pytestmark = pytest.mark.usefixtures("stock_invariants_hold")

HAPPY_STEPS = ["validate_order", "process_payment", "update_inventory", "generate_receipt", "send_notification"]


def test_the_state_names_are_exactly_those_of_the_design():
    assert [state.value for state in OrderState] == [
        "PENDING",
        "VALIDATED",
        "PAID",
        "CONFIRMED",
        "COMPLETED",
        "REJECTED",
        "PAYMENT_FAILED",
        "FAILED",
        "CANCELLED",
    ]
    assert set(TRANSITIONS) == set(OrderState)


def test_a_paid_order_completes_with_one_charge_one_receipt_one_email_and_its_stock_sold(shopper, make_product):
    make_product("MUG-001", price="12.50", on_hand=5)

    order = shopper.buys({"MUG-001": 2})

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert order.completed_at is not None
    assert history(order) == [
        ("validate_order", "succeeded", 1, "VALIDATED"),
        ("process_payment", "succeeded", 1, "PAID"),
        ("update_inventory", "succeeded", 1, "CONFIRMED"),
        ("generate_receipt", "succeeded", 1, ""),
        ("send_notification", "succeeded", 1, "COMPLETED"),
    ]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["shopper@example.com"]
    assert order.reference in mail.outbox[0].subject
    assert f"/api/orders/{order.reference}/receipt" in mail.outbox[0].body
    assert Receipt.objects.filter(order=order, stored_at__isnull=False).count() == 1
    assert order.payment.status == Payment.Status.CAPTURED
    assert order.payment.amount == order.total
    assert SimulatedPaymentIntent.objects.get().status == "succeeded"
    assert SimulatedPaymentIntent.objects.get().amount_minor == 2500
    assert sales_in_ledger(order) == [("sale", -2)]
    stock = stock_of("MUG-001")
    assert (stock.on_hand, stock.reserved) == (3, 0)


def test_an_accepted_order_has_its_stock_reserved_and_its_next_step_queued(make_product, shopper, held_pipeline):
    make_product("MUG-001", on_hand=5)

    order = shopper.buys({"MUG-001": 1})

    assert order.state == "VALIDATED"
    assert stock_of("MUG-001").reserved == 1
    assert history(order) == [("validate_order", "succeeded", 1, "VALIDATED")]
    assert held_pipeline.queued() == [("orders.tasks.advance_order", (order.pk,))]


def test_one_queued_message_runs_all_of_an_orders_steps_back_to_back(make_product, shopper, held_pipeline):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1})
    [(task, args)] = held_pipeline.queued()
    held_pipeline.lose_queued()

    pipeline.advance_order(*args)

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert [step for step, *_ in history(order)] == HAPPY_STEPS
    assert held_pipeline.queued() == []
    assert len(mail.outbox) == 1


def test_a_chain_of_steps_that_runs_out_of_time_hands_the_next_step_to_the_queue(
    make_product, shopper, held_pipeline, monkeypatch
):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1})
    held_pipeline.lose_queued()
    monkeypatch.setattr(pipeline, "CHAIN_SECONDS", 0)

    pipeline.advance_order(order.pk)

    order.refresh_from_db()
    assert order.state == "PAID"  # one step ran, committed, and its successor was queued
    assert held_pipeline.queued() == [("orders.tasks.advance_order", (order.pk,))]


def test_a_chain_stops_where_the_order_ends(make_product, shopper, held_pipeline):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1}, pay_with="pm_card_chargeDeclined")
    held_pipeline.lose_queued()

    pipeline.advance_order(order.pk)

    order.refresh_from_db()
    assert order.state == "PAYMENT_FAILED"
    queued = [task for task, _ in held_pipeline.queued()]
    assert queued == ["orders.tasks.refund_or_void", "orders.tasks.send_failure_notification"]


def test_a_task_queued_under_its_former_name_still_runs_its_step():
    # What a worker does with a queued task's path (django_q.worker): messages queued before
    # the tasks took their steps' names must find the same function.
    for former, task in [
        ("orders.tasks.compensate_order", Task.REFUND_OR_VOID),
        ("orders.tasks.notify_failure", Task.SEND_FAILURE_NOTIFICATION),
        ("orders.tasks.notify_refund", Task.SEND_REFUND_EMAIL),
    ]:
        assert pydoc.locate(former) is pydoc.locate(str(task)) is not None


def test_the_next_step_is_queued_only_once_the_step_has_committed(make_product, shopper, held_pipeline):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1})
    held_pipeline.lose_queued()

    run_step(order.pk, "process_payment")

    order.refresh_from_db()
    assert order.state == "PAID"
    assert held_pipeline.queued() == [("orders.tasks.advance_order", (order.pk,))]


@pytest.mark.parametrize(
    ("payment_method", "decline_code", "reason"),
    [
        ("pm_card_chargeDeclined", "generic_decline", "Your card was declined."),
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds", "Your card has insufficient funds."),
    ],
    ids=["declined", "insufficient-funds"],
)
def test_a_declined_card_ends_payment_failed_releases_the_stock_and_sends_one_failure_email(
    shopper, make_product, payment_method, decline_code, reason
):
    make_product("MUG-001", on_hand=5)

    order = shopper.buys({"MUG-001": 2}, pay_with=payment_method)

    order.refresh_from_db()
    assert order.state == "PAYMENT_FAILED"
    assert (order.failure_code, order.failure_reason) == (decline_code, reason)
    assert history(order) == [
        ("validate_order", "succeeded", 1, "VALIDATED"),
        ("process_payment", "failed", 1, "PAYMENT_FAILED"),
        ("refund_or_void", "succeeded", 1, ""),
        ("send_failure_notification", "succeeded", 1, ""),
    ]
    stock = stock_of("MUG-001")
    assert (stock.on_hand, stock.reserved) == (5, 0)
    assert sales_in_ledger(order) == []
    assert order.payment.status == Payment.Status.DECLINED
    assert order.payment.decline_code == decline_code
    assert charged_intents() == 0
    assert len(mail.outbox) == 1
    assert "could not process" in mail.outbox[0].subject
    assert reason in mail.outbox[0].body
    assert not Receipt.objects.exists()


def test_an_order_for_more_than_is_in_stock_is_rejected_naming_every_short_line(shopper, make_product):
    make_product("MUG-001", on_hand=1)
    make_product("TEE-002", on_hand=0)
    make_product("CAP-003", on_hand=9)

    order = shopper.buys({"MUG-001": 2, "TEE-002": 1, "CAP-003": 3})

    order.refresh_from_db()
    assert order.state == "REJECTED"
    assert order.failure_code == "out_of_stock"
    assert "MUG-001: 2 requested, 1 available" in order.failure_reason
    assert "TEE-002: 1 requested, 0 available" in order.failure_reason
    assert "CAP-003" not in order.failure_reason
    assert history(order) == [
        ("validate_order", "failed", 1, "REJECTED"),
        ("send_failure_notification", "succeeded", 1, ""),
    ]
    assert [stock_of(sku).reserved for sku in ("MUG-001", "TEE-002", "CAP-003")] == [0, 0, 0]
    assert not SimulatedPaymentIntent.objects.exists()
    assert not Payment.objects.exists()
    assert len(mail.outbox) == 1


def _order_left_pending(product, quantity: int) -> Order:
    """An order written PENDING and never validated, as an earlier release of the shop left
    them (orders are validated as they are accepted now): the pipeline still owns it."""
    order = Order.objects.create(
        email="shopper@example.com",
        currency=product.currency,
        subtotal=product.price * quantity,
        tax_rate=0,
        tax=0,
        total=product.price * quantity,
        payment_method="pm_card_visa",
    )
    order.lines.create(
        product=product,
        sku=product.sku,
        name=product.name,
        quantity=quantity,
        unit_price=product.price,
        line_total=product.price * quantity,
    )
    return order


def test_an_order_left_pending_is_validated_and_completed_by_the_pipeline(make_product):
    order = _order_left_pending(make_product("MUG-001", on_hand=5), 2)

    pipeline.advance_order(order.pk)

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert [step for step, *_ in history(order)] == HAPPY_STEPS
    assert (stock_of("MUG-001").on_hand, stock_of("MUG-001").reserved) == (3, 0)


def test_an_order_left_pending_for_a_product_retired_since_is_rejected_as_out_of_stock(make_product):
    product = make_product("MUG-001", on_hand=5)
    order = _order_left_pending(product, 1)
    product.active = False
    product.save()

    pipeline.advance_order(order.pk)

    order.refresh_from_db()
    assert order.state == "REJECTED"
    assert "MUG-001: 1 requested, 0 available" in order.failure_reason
    assert stock_of("MUG-001").reserved == 0


def test_a_transient_gateway_error_is_retried_and_charges_once(shopper, make_product):
    make_product("MUG-001", on_hand=5)

    order = shopper.buys({"MUG-001": 1}, pay_with="pm_sim_transient_error")

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert history(order)[1:3] == [
        ("process_payment", "retrying", 1, ""),
        ("process_payment", "succeeded", 2, "PAID"),
    ]
    assert "TransientGatewayError" in OrderEvent.objects.get(order=order, outcome="retrying").error
    intent = SimulatedPaymentIntent.objects.get()
    assert (intent.status, intent.calls) == ("succeeded", 2)
    assert order.payment.status == Payment.Status.CAPTURED
    assert len(mail.outbox) == 1


def test_a_charge_whose_answer_was_lost_is_found_again_and_not_repeated(shopper, make_product):
    make_product("MUG-001", on_hand=5)

    order = shopper.buys({"MUG-001": 1}, pay_with="pm_sim_timeout")

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert [event[:3] for event in history(order) if event[0] == "process_payment"] == [
        ("process_payment", "retrying", 1),
        ("process_payment", "succeeded", 2),
    ]
    assert SimulatedPaymentIntent.objects.count() == 1
    assert SimulatedPaymentIntent.objects.get().status == "succeeded"
    assert order.payment.provider_reference == SimulatedPaymentIntent.objects.get().reference


def test_a_gateway_that_stays_down_fails_the_order_after_its_attempts_with_no_charge(shopper, make_product):
    make_product("MUG-001", on_hand=5)
    attempts = STEPS["process_payment"].retry.max_attempts

    order = shopper.buys({"MUG-001": 2}, pay_with="pm_sim_unavailable")

    order.refresh_from_db()
    assert order.state == "FAILED"
    assert order.failure_reason == "We could not process your order; no money was taken."
    payment_events = [event for event in history(order) if event[0] == "process_payment"]
    assert payment_events == [("process_payment", "retrying", n, "") for n in range(1, attempts)] + [
        ("process_payment", "failed", attempts, "FAILED")
    ]
    assert charged_intents() == 0
    assert SimulatedPaymentIntent.objects.get().calls == attempts
    stock = stock_of("MUG-001")
    assert (stock.on_hand, stock.reserved) == (5, 0)
    assert len(mail.outbox) == 1


def test_a_capture_that_keeps_failing_voids_the_hold_and_returns_the_stock_through_the_ledger(shopper, make_product):
    make_product("MUG-001", on_hand=5)
    attempts = STEPS["update_inventory"].retry.max_attempts

    order = shopper.buys({"MUG-001": 2}, pay_with="pm_sim_capture_unavailable")

    order.refresh_from_db()
    assert order.state == "FAILED"
    assert [e for e in history(order) if e[0] == "update_inventory"][-1] == (
        "update_inventory",
        "failed",
        attempts,
        "FAILED",
    )
    assert SimulatedPaymentIntent.objects.get().status == "canceled"
    assert order.payment.status == Payment.Status.VOIDED
    assert sales_in_ledger(order) == [("sale", -2), ("return", 2)]
    stock = stock_of("MUG-001")
    assert (stock.on_hand, stock.reserved) == (5, 0)
    assert len(mail.outbox) == 1
    assert not Receipt.objects.exists()


def _order_held_at(state: str, shopper, held_pipeline) -> Order:
    """An order the pipeline brought to `state` and left there (its next message lost)."""
    order = shopper.buys({"MUG-001": 2})
    for step in HAPPY_STEPS:
        order.refresh_from_db()
        if order.state == state:
            break
        held_pipeline.run_by_hand(order, step)
    held_pipeline.lose_queued()
    order.refresh_from_db()
    assert order.state == state
    return order


@pytest.mark.parametrize("state", ["VALIDATED", "PAID"])
def test_cancelling_an_order_before_its_stock_is_deducted_releases_it_and_leaves_no_charge(
    shopper, make_product, held_pipeline, state
):
    make_product("MUG-001", on_hand=5)
    order = _order_held_at(state, shopper, held_pipeline)
    held_pipeline.run_inline()

    cancel_order(order, reason="Shopper phoned to cancel.")

    order.refresh_from_db()
    assert order.state == "CANCELLED"
    assert order.failure_reason == "Shopper phoned to cancel."
    assert history(order)[-3:] == [
        ("cancel_order", "succeeded", 1, "CANCELLED"),
        ("refund_or_void", "succeeded", 1, ""),
        ("send_failure_notification", "succeeded", 1, ""),
    ]
    stock = stock_of("MUG-001")
    assert (stock.on_hand, stock.reserved) == (5, 0)
    assert charged_intents() == 0
    assert Payment.objects.exclude(status=Payment.Status.VOIDED).count() == 0
    [email] = mail.outbox  # a manager's cancellation is news to the shopper
    assert email.subject == f"Your order {order.reference} has been cancelled"
    assert "Shopper phoned to cancel." in email.body


def test_cancelling_a_confirmed_order_refunds_it_and_returns_its_stock(shopper, make_product, held_pipeline):
    make_product("MUG-001", on_hand=5)
    order = _order_held_at("CONFIRMED", shopper, held_pipeline)
    held_pipeline.run_inline()

    cancel_order(order)

    order.refresh_from_db()
    assert order.state == "CANCELLED"
    intent = SimulatedPaymentIntent.objects.get()
    assert intent.amount_refunded_minor == intent.amount_minor
    assert order.payment.status == Payment.Status.REFUNDED
    assert sales_in_ledger(order) == [("sale", -2), ("return", 2)]
    assert stock_of("MUG-001").on_hand == 5


def test_a_finished_order_cannot_be_cancelled(shopper, make_product):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1})
    before = row_counts()

    with pytest.raises(IllegalTransition):
        cancel_order(order)

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert row_counts() == before


def test_every_step_run_twice_still_charges_emails_receipts_and_sells_once(shopper, make_product, held_pipeline):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 2})

    for step in HAPPY_STEPS:
        run_step(order.pk, step)
        run_step(order.pk, step)  # a duplicated message, or a second worker
    held_pipeline.lose_queued()

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert SimulatedPaymentIntent.objects.count() == 1
    assert len(mail.outbox) == 1
    assert Receipt.objects.count() == 1
    assert sales_in_ledger(order) == [("sale", -2)]
    assert stock_of("MUG-001").on_hand == 3


def test_running_any_step_again_on_a_completed_order_changes_nothing(shopper, make_product):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 2})
    before = row_counts()
    intent_before = SimulatedPaymentIntent.objects.values().get()

    pipeline.advance_order(order.pk)
    for step in STEPS:
        run_step(order.pk, step)

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert row_counts() == before
    assert SimulatedPaymentIntent.objects.values().get() == intent_before
    assert order.payment.status == Payment.Status.CAPTURED
    assert len(mail.outbox) == 1
    assert Receipt.objects.count() == 1


def test_running_a_step_again_on_a_failed_order_changes_nothing(shopper, make_product):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 2}, pay_with="pm_sim_capture_unavailable")
    ledger_before = sales_in_ledger(order)

    pipeline.advance_order(order.pk)
    for step in STEPS:
        run_step(order.pk, step)

    order.refresh_from_db()
    assert order.state == "FAILED"
    assert sales_in_ledger(order) == ledger_before
    assert SimulatedPaymentIntent.objects.get().status == "canceled"
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        ("PENDING", "PAID"),
        ("PENDING", "COMPLETED"),
        ("VALIDATED", "REJECTED"),
        ("PAID", "PAYMENT_FAILED"),
        ("CONFIRMED", "FAILED"),
        ("COMPLETED", "PENDING"),
        ("COMPLETED", "CANCELLED"),
        ("CANCELLED", "VALIDATED"),
        ("FAILED", "COMPLETED"),
    ],
    ids=lambda state: state,
)
def test_set_state_refuses_a_move_the_state_machine_forbids(shopper, make_product, held_pipeline, current, wanted):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1})
    Order.objects.filter(pk=order.pk).update(state=current)  # arrange: the order stands in `current`
    order.refresh_from_db()
    events_before = OrderEvent.objects.count()

    with pytest.raises(IllegalTransition):
        set_state(order, wanted, start_run("test", order))

    order.refresh_from_db()
    assert order.state == current
    assert OrderEvent.objects.count() == events_before


def test_the_gateway_is_called_outside_any_transaction_with_a_key_derived_from_the_order(
    shopper, make_product, monkeypatch
):
    make_product("MUG-001", on_hand=5)
    calls = []

    def spy(name):
        real = getattr(SimulatedGateway, name)

        def call(self, **kwargs):
            calls.append((name, connection.in_atomic_block, kwargs.get("idempotency_key")))
            return real(self, **kwargs)

        return call

    for name in ("authorize", "capture", "void", "refund"):
        monkeypatch.setattr(SimulatedGateway, name, spy(name))

    paid = shopper.buys({"MUG-001": 1})
    failed = shopper.buys({"MUG-001": 1}, pay_with="pm_sim_capture_unavailable")

    assert {name for name, _, _ in calls} == {"authorize", "capture", "void"}
    assert not any(in_transaction for _, in_transaction, _ in calls)
    assert ("authorize", False, f"{paid.reference}:authorize") in calls
    assert ("capture", False, f"{paid.reference}:capture") in calls
    assert ("void", False, f"{failed.reference}:void") in calls


def test_the_task_queue_never_runs_a_step_twice_at_once_nor_retries_a_message_forever():
    queue = settings.Q_CLUSTER
    assert queue["retry"] > queue["timeout"]
    assert queue["max_attempts"] > 0
