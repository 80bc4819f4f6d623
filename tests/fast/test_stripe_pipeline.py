"""The pipeline on PAYMENT_GATEWAY=stripe, with the real SDK against the local Stripe server."""

import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orders import services, steps
from orders.models import Order
from orders.tasks import sweep_stuck_orders
from payments.models import Payment
from tests.support.fake_stripe import deliver
from tests.support.invariants import stock_of


def test_an_order_paid_by_card_completes_with_one_captured_payment_intent(shopper, make_product, fake_stripe):
    make_product("MUG-001", price="12.50", on_hand=5)

    order = shopper.buys({"MUG-001": 2})

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    [intent] = fake_stripe.intents_for(order.reference)
    assert intent["status"] == "succeeded"
    assert (intent["amount"], intent["currency"], intent["capture_method"]) == (2500, "usd", "manual")
    assert fake_stripe.charge_of(intent["id"])["amount_captured"] == 2500
    payment = order.payment
    assert (payment.provider, payment.provider_reference, payment.status) == ("stripe", intent["id"], "captured")
    assert (payment.card_brand, payment.card_last4) == ("visa", "4242")
    assert {c.idempotency_key for c in fake_stripe.calls if c.method == "POST"} == {
        f"{order.reference}:authorize",
        f"{order.reference}:capture",
    }


def test_a_yen_order_is_charged_in_whole_yen(shopper, make_product, fake_stripe):
    make_product("TEA-JP", price="1200", currency="JPY", on_hand=5)

    order = shopper.buys({"TEA-JP": 2})

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    [intent] = fake_stripe.intents_for(order.reference)
    assert (intent["amount"], intent["currency"]) == (2400, "jpy")
    assert fake_stripe.charge_of(intent["id"])["amount_captured"] == 2400


def test_a_lost_authorisation_answer_is_recovered_by_the_retry_with_one_charge(shopper, make_product, fake_stripe):
    make_product("MUG-001", price="12.50", on_hand=5)
    fake_stripe.hang_next("create_intent")  # Stripe charges, the answer never arrives in time

    order = shopper.buys({"MUG-001": 2})

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert len(fake_stripe.intents_for(order.reference)) == 1
    first, retry = fake_stripe.calls_of("create_intent")
    assert first.idempotency_key == retry.idempotency_key
    assert retry.replayed
    assert [e.outcome for e in order.events.filter(step="process_payment")] == ["retrying", "succeeded"]


class WorkerKilled(BaseException):
    """A worker process dying (kill -9): nothing after it runs, no handler catches it."""


def test_a_worker_killed_after_charging_is_redriven_by_the_sweeper_without_a_second_charge(
    shopper, make_product, fake_stripe, monkeypatch, settings
):
    make_product("MUG-001", price="12.50", on_hand=5)
    real_authorize = steps.authorize_payment

    def authorize_then_die(order):
        real_authorize(order)
        raise WorkerKilled

    monkeypatch.setattr(steps, "authorize_payment", authorize_then_die)
    with pytest.raises(WorkerKilled):
        shopper.buys({"MUG-001": 2})
    order = Order.objects.get()
    assert order.state == "VALIDATED"
    assert len(fake_stripe.intents_for(order.reference)) == 1

    monkeypatch.setattr(steps, "authorize_payment", real_authorize)
    # The dead worker's lease on the order lapses (after the payment step's longest call).
    Order.objects.filter(pk=order.pk).update(worked_until=timezone.now() - timedelta(seconds=1))
    settings.ORDER_STUCK_AFTER_SECONDS = 0
    sweep_stuck_orders()

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    [intent] = fake_stripe.intents_for(order.reference)
    assert intent["status"] == "succeeded"
    assert len(fake_stripe.calls_of("capture_intent")) == 1


def test_running_the_payment_step_twice_charges_once(make_product, shopper, fake_stripe, held_pipeline):
    make_product("MUG-001", price="12.50", on_hand=5)
    order = shopper.buys({"MUG-001": 2})

    steps.authorize_payment(order)  # a first worker charged, then lost its answer
    held_pipeline.run_by_hand(order, "process_payment", "process_payment")

    assert order.state == "PAID"
    assert len(fake_stripe.intents_for(order.reference)) == 1
    assert order.payment.status == "authorized"


def test_the_payment_is_captured_only_after_the_stock_is_deducted(shopper, make_product, fake_stripe, monkeypatch):
    make_product("MUG-001", price="12.50", on_hand=5)
    happened = []
    real_move = steps.move_stock

    def deduct(move, lines, *, order_id):
        real_move(move, lines, order_id=order_id)
        happened.append("stock deducted")

    monkeypatch.setattr(steps, "move_stock", deduct)
    fake_stripe.on_call["capture_intent"] = lambda params: happened.append("payment captured")

    order = shopper.buys({"MUG-001": 2})

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert happened == ["stock deducted", "payment captured"]
    assert (stock_of("MUG-001").on_hand, stock_of("MUG-001").reserved) == (3, 0)


@pytest.mark.parametrize(
    ("payment_method", "decline_code", "shopper_message"),
    [
        ("pm_card_chargeDeclined", "generic_decline", "Your card was declined."),
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds", "Your card has insufficient funds."),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card", "Your card has expired."),
        ("pm_card_chargeDeclinedFraudulent", "fraudulent", "Your card was declined."),
    ],
)
def test_a_declined_card_ends_payment_failed_with_the_decline_code_and_releases_stock(
    api, shopper, make_product, fake_stripe, payment_method, decline_code, shopper_message
):
    make_product("MUG-001", price="12.50", on_hand=5)

    order = shopper.buys({"MUG-001": 2}, pay_with=payment_method)

    body = api.get(f"/api/orders/{order.reference}/").json()
    assert body["state"] == "PAYMENT_FAILED"
    assert (body["failure_code"], body["failure_reason"]) == (decline_code, shopper_message)
    assert body["payment_status"] == "declined"
    assert (stock_of("MUG-001").on_hand, stock_of("MUG-001").reserved) == (5, 0)
    assert not fake_stripe.calls_of("capture_intent")
    [intent] = fake_stripe.intents_for(order.reference)
    assert intent["status"] == "requires_payment_method"


def test_a_rate_limited_authorisation_is_retried_and_the_order_completes(shopper, make_product, fake_stripe):
    make_product("MUG-001", price="12.50", on_hand=5)
    fake_stripe.fail_next("create_intent", status=429, times=2)

    order = shopper.buys({"MUG-001": 2})

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert len(fake_stripe.intents_for(order.reference)) == 1
    assert [e.outcome for e in order.events.filter(step="process_payment")] == ["retrying", "retrying", "succeeded"]


def test_stripe_failing_on_every_try_ends_the_order_failed_with_no_money_taken(shopper, make_product, fake_stripe):
    make_product("MUG-001", price="12.50", on_hand=5)
    fake_stripe.fail_next("create_intent", status=500, times=20)

    order = shopper.buys({"MUG-001": 2})

    order.refresh_from_db()
    assert order.state == "FAILED"
    assert order.failure_code == "processing_error"
    assert (stock_of("MUG-001").on_hand, stock_of("MUG-001").reserved) == (5, 0)
    assert fake_stripe.intents_for(order.reference) == []


def test_bad_credentials_leave_the_order_waiting_and_flagged_never_declined(
    shopper, make_product, fake_stripe, settings, caplog
):
    make_product("MUG-001", price="12.50", on_hand=5)
    settings.STRIPE_SECRET_KEY = "sk_test_revoked"

    with caplog.at_level(logging.ERROR):
        order = shopper.buys({"MUG-001": 2})

    order.refresh_from_db()
    assert order.state == "VALIDATED"
    assert order.needs_attention
    assert order.failure_code == ""
    assert any("Stripe refused our credentials" in r.getMessage() for r in caplog.records)
    assert fake_stripe.intents_for(order.reference) == []


def test_a_capture_that_keeps_failing_ends_failed_voids_the_hold_and_returns_the_stock(
    shopper, make_product, fake_stripe
):
    make_product("MUG-001", price="12.50", on_hand=5)
    fake_stripe.fail_next("capture_intent", status=503, times=20)

    order = shopper.buys({"MUG-001": 2})

    order.refresh_from_db()
    assert order.state == "FAILED"
    [intent] = fake_stripe.intents_for(order.reference)
    assert intent["status"] == "canceled"
    assert fake_stripe.refunds == {}
    assert order.payment.status == "voided"
    assert (stock_of("MUG-001").on_hand, stock_of("MUG-001").reserved) == (5, 0)


def test_an_inventory_step_that_keeps_failing_voids_the_hold_and_never_captures(
    shopper, make_product, fake_stripe, monkeypatch
):
    make_product("MUG-001", price="12.50", on_hand=5)

    def deduct_fails(move, lines, *, order_id):
        raise RuntimeError("warehouse database unreachable")

    monkeypatch.setattr(steps, "move_stock", deduct_fails)

    order = shopper.buys({"MUG-001": 2})

    order.refresh_from_db()
    assert order.state == "FAILED"
    assert not fake_stripe.calls_of("capture_intent")
    assert fake_stripe.intents_for(order.reference)[0]["status"] == "canceled"
    assert order.payment.status == "voided"
    assert (stock_of("MUG-001").on_hand, stock_of("MUG-001").reserved) == (5, 0)


def test_cancelling_a_paid_order_voids_the_hold(shopper, make_product, fake_stripe, held_pipeline):
    make_product("MUG-001", price="12.50", on_hand=5)
    order = held_pipeline.run_by_hand(shopper.buys({"MUG-001": 2}), "process_payment")
    held_pipeline.run_inline()  # what the cancel sets off runs as in production
    assert order.state == "PAID"

    services.cancel_order(order, reason="Shopper called.")

    order.refresh_from_db()
    assert order.state == "CANCELLED"
    [intent] = fake_stripe.intents_for(order.reference)
    assert intent["status"] == "canceled"
    assert not fake_stripe.calls_of("create_refund")
    assert order.payment.status == "voided"
    assert (stock_of("MUG-001").on_hand, stock_of("MUG-001").reserved) == (5, 0)


def test_cancelling_a_confirmed_order_refunds_the_capture(shopper, make_product, fake_stripe, held_pipeline):
    make_product("MUG-001", price="12.50", on_hand=5)
    order = held_pipeline.run_by_hand(shopper.buys({"MUG-001": 2}), "process_payment", "update_inventory")
    held_pipeline.run_inline()  # what the cancel sets off runs as in production
    assert order.state == "CONFIRMED"

    services.cancel_order(order, reason="Shopper called.")

    order.refresh_from_db()
    assert order.state == "CANCELLED"
    [intent] = fake_stripe.intents_for(order.reference)
    assert intent["status"] == "succeeded"
    assert fake_stripe.charge_of(intent["id"])["amount_refunded"] == 2500
    assert not fake_stripe.calls_of("cancel_intent")
    assert (order.payment.status, order.payment.amount_refunded) == ("refunded", Decimal("25.00"))
    assert (stock_of("MUG-001").on_hand, stock_of("MUG-001").reserved) == (5, 0)


def test_a_void_that_loses_the_race_with_a_capture_is_followed_by_a_refund(
    shopper, make_product, fake_stripe, held_pipeline
):
    make_product("MUG-001", price="12.50", on_hand=5)
    order = held_pipeline.run_by_hand(shopper.buys({"MUG-001": 2}), "process_payment")
    held_pipeline.run_inline()  # what the cancel sets off runs as in production
    intent_id = order.payment.provider_reference
    # Between our read of the intent and our void, it is captured elsewhere.
    fake_stripe.on_call["cancel_intent"] = lambda params: fake_stripe.capture_in_dashboard(intent_id)

    services.cancel_order(order)

    order.refresh_from_db()
    assert order.state == "CANCELLED"
    assert fake_stripe.charge_of(intent_id)["amount_refunded"] == 2500
    assert order.payment.status == "refunded"


# --- 3-D Secure ---------------------------------------------------------------------------


def test_an_order_needing_3d_secure_waits_validated_with_the_client_secret_for_the_shoppers_page(
    api, shopper, make_product, fake_stripe
):
    make_product("MUG-001", price="12.50", on_hand=5)

    order = shopper.buys({"MUG-001": 2}, pay_with="pm_card_threeDSecure2Required")

    body = api.get(f"/api/orders/{order.reference}/").json()
    [intent] = fake_stripe.intents_for(order.reference)
    assert body["state"] == "VALIDATED"
    assert body["payment_status"] == "requires_action"
    assert body["payment_action"] == {"type": "authenticate", "client_secret": intent["client_secret"]}
    assert stock_of("MUG-001").reserved == 2


def test_a_shopper_who_authenticates_gets_the_order_completed_by_the_webhook(api, shopper, make_product, fake_stripe):
    make_product("MUG-001", price="12.50", on_hand=5)
    order = shopper.buys({"MUG-001": 2}, pay_with="pm_card_authenticationRequired")
    [intent] = fake_stripe.intents_for(order.reference)

    event = fake_stripe.authenticate(intent["id"])
    assert deliver(api, event).status_code == 200

    body = api.get(f"/api/orders/{order.reference}/").json()
    assert body["state"] == "COMPLETED"
    assert body["payment_status"] == "captured"
    assert body["payment_action"] is None
    assert fake_stripe.intents[intent["id"]]["status"] == "succeeded"
    assert Order.objects.get(pk=order.pk).payment.client_secret == ""


def test_a_failed_authentication_ends_payment_failed_and_releases_the_stock(api, shopper, make_product, fake_stripe):
    make_product("MUG-001", price="12.50", on_hand=5)
    order = shopper.buys({"MUG-001": 2}, pay_with="pm_card_threeDSecure2Required")
    [intent] = fake_stripe.intents_for(order.reference)

    deliver(api, fake_stripe.authenticate(intent["id"], succeed=False))

    order.refresh_from_db()
    assert order.state == "PAYMENT_FAILED"
    assert order.failure_code == "payment_intent_authentication_failure"
    assert order.failure_reason == "We could not authenticate your payment method."
    assert (stock_of("MUG-001").on_hand, stock_of("MUG-001").reserved) == (5, 0)


def test_an_authentication_the_webhook_never_reported_is_found_by_the_sweeper(
    shopper, make_product, fake_stripe, settings
):
    make_product("MUG-001", price="12.50", on_hand=5)
    order = shopper.buys({"MUG-001": 2}, pay_with="pm_card_threeDSecure2Required")
    [intent] = fake_stripe.intents_for(order.reference)
    fake_stripe.authenticate(intent["id"])  # the event is lost on its way

    settings.ORDER_STUCK_AFTER_SECONDS = 0
    sweep_stuck_orders()

    order.refresh_from_db()
    assert order.state == "COMPLETED"


def test_a_shopper_who_never_authenticates_has_the_intent_cancelled_and_the_order_ended(
    shopper, make_product, fake_stripe, settings
):
    make_product("MUG-001", price="12.50", on_hand=5)
    order = shopper.buys({"MUG-001": 2}, pay_with="pm_card_threeDSecure2Required")
    settings.ORDER_STUCK_AFTER_SECONDS = 0
    sweep_stuck_orders()  # still within the time allowed: nothing changes
    order.refresh_from_db()
    assert order.state == "VALIDATED"
    assert order.events.filter(step="process_payment", outcome="skipped").count() == 1

    settings.PAYMENT_AUTHENTICATION_TIMEOUT_SECONDS = 0
    # The sweeper asks about a waiting payment with backoff: last asked long ago, it asks now.
    long_ago = timezone.now() - timedelta(hours=1)
    Payment.objects.filter(order=order).update(created_at=long_ago - timedelta(hours=1), updated_at=long_ago)
    sweep_stuck_orders()

    order.refresh_from_db()
    assert order.state == "PAYMENT_FAILED"
    assert order.failure_code == "authentication_expired"
    [intent] = fake_stripe.intents_for(order.reference)
    assert intent["status"] == "canceled"
    assert order.payment.status == "voided"
    assert (stock_of("MUG-001").on_hand, stock_of("MUG-001").reserved) == (5, 0)
