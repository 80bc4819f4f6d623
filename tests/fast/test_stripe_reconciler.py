"""The scheduled reconciler: orders whose payments disagree with Stripe are flagged for a manager."""

import logging

import pytest
from django_q.models import Schedule

from orders import services
from payments import stripe_events
from payments.models import StripeEvent
from payments.reconciliation import reconcile_payments
from payments.stripe_events import process_stripe_event
from tests.support.fake_stripe import deliver


@pytest.fixture(autouse=True)
def _settled_at_once(settings):
    settings.PAYMENT_RECONCILE_AFTER_SECONDS = 0


@pytest.fixture
def broken_books(fake_stripe):
    """These tests make Stripe's books and ours disagree on purpose: that is what the reconciler finds."""
    fake_stripe.check_books = False
    return fake_stripe


def test_the_reconciler_runs_on_a_schedule_in_every_install(db):
    schedule = Schedule.objects.get(func="payments.tasks.reconcile_payments")

    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == ("I", 10, -1)


def test_orders_that_agree_with_stripe_are_left_alone(shopper, make_product, fake_stripe):
    make_product("MUG-001", price="12.50", on_hand=5)
    completed = shopper.buys({"MUG-001": 2})
    declined = shopper.buys({"MUG-001": 2}, pay_with="pm_card_chargeDeclined")

    assert reconcile_payments() == 0

    for order in (completed, declined):
        order.refresh_from_db()
        assert not order.needs_attention


def test_a_charge_kept_for_a_cancelled_order_is_flagged_once(
    shopper, make_product, broken_books, held_pipeline, caplog
):
    fake_stripe = broken_books
    make_product("MUG-001", price="12.50", on_hand=5)
    order = held_pipeline.run_by_hand(shopper.buys({"MUG-001": 2}), "process_payment")
    held_pipeline.run_inline()  # the compensation runs as in production
    # Someone captures in Stripe's dashboard, after the shop's void already failed for good.
    [intent] = fake_stripe.intents_for(order.reference)
    fake_stripe.capture_in_dashboard(intent["id"])
    fake_stripe.fail_next("create_refund", status=500, times=100)
    services.cancel_order(order)
    order.refresh_from_db()
    assert order.state == "CANCELLED"
    order.needs_attention = False  # compensation gave up loudly; the reconciler must see it on its own
    order.save(update_fields=["needs_attention"])

    with caplog.at_level(logging.ERROR):
        assert reconcile_payments() == 1
        assert reconcile_payments() == 0

    order.refresh_from_db()
    assert order.needs_attention
    [flag] = order.events.filter(step="reconcile_payments")
    assert flag.summary.startswith("Charge without an order: the order is CANCELLED but 25.00 USD is captured")
    assert any("Charge without an order" in r.getMessage() for r in caplog.records)


def test_a_completed_order_whose_payment_stripe_does_not_hold_is_flagged(shopper, make_product, broken_books):
    fake_stripe = broken_books
    make_product("MUG-001", price="12.50", on_hand=5)
    order = shopper.buys({"MUG-001": 2})
    [intent] = fake_stripe.intents_for(order.reference)
    intent["status"] = "canceled"  # Stripe's books say otherwise than ours

    assert reconcile_payments() == 1

    order.refresh_from_db()
    assert order.needs_attention
    assert order.events.get(step="reconcile_payments").summary.startswith("Order without a charge")


def test_an_event_whose_processing_failed_is_processed_by_the_reconciler(
    api, shopper, make_product, fake_stripe, monkeypatch
):
    make_product("MUG-001", price="12.50", on_hand=5)
    order = shopper.buys({"MUG-001": 2})
    [intent] = fake_stripe.intents_for(order.reference)
    dispute = fake_stripe.dispute(intent["id"])
    stored = StripeEvent.objects.create(event_id=dispute["id"], type=dispute["type"], payload=dispute)
    with monkeypatch.context() as patched, pytest.raises(ZeroDivisionError):
        patched.setitem(stripe_events.HANDLERS, "charge.dispute.created", lambda obj: 1 / 0)
        process_stripe_event(stored.pk)
    assert StripeEvent.objects.get().processed_at is None

    reconcile_payments()

    assert StripeEvent.objects.get().processed_at is not None
    order.refresh_from_db()
    assert order.needs_attention
    assert deliver(api, dispute).json()["duplicate"] is True


def test_each_run_asks_stripe_only_about_the_orders_settled_since_the_last_one(shopper, make_product, fake_stripe):
    make_product("MUG-001", price="12.50", on_hand=10)
    first = [shopper.buys({"MUG-001": 1}) for _ in range(2)]

    assert reconcile_payments() == 0
    assert len(fake_stripe.calls_of("retrieve_intent")) == 2
    later = shopper.buys({"MUG-001": 1})
    assert reconcile_payments() == 0

    asked = [call.path.rsplit("/", 1)[-1] for call in fake_stripe.calls_of("retrieve_intent")]
    assert asked[2:] == [later.payment.provider_reference]
    assert sorted(asked[:2]) == sorted(order.payment.provider_reference for order in first)


def test_a_payment_stripe_could_not_be_asked_about_is_compared_on_the_next_run(shopper, make_product, broken_books):
    fake_stripe = broken_books
    make_product("MUG-001", price="12.50", on_hand=5)
    order = shopper.buys({"MUG-001": 2})
    [intent] = fake_stripe.intents_for(order.reference)
    intent["status"] = "canceled"  # Stripe's books say otherwise than ours
    fake_stripe.fail_next("retrieve_intent", status=500)

    assert reconcile_payments() == 0  # Stripe did not answer: nothing is known yet
    order.refresh_from_db()
    assert not order.needs_attention

    assert reconcile_payments() == 1
    order.refresh_from_db()
    assert order.needs_attention
