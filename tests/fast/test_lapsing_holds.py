"""Card holds are captured or voided by policy before they lapse; tile and alarm read one rule."""

from datetime import timedelta

from django.core import mail
from django.utils import timezone

from monitoring.alarms import evaluate_alarms
from orders.audit import audit_invariants
from orders.lapsing_holds import settle_lapsing_holds
from orders.selectors import attention_counts
from payments.models import Payment
from tests.support.invariants import stock_of

HOUR = 3600


def an_order_held_in_paid(shopper, make_product, held_pipeline):
    make_product("MUG-001", price="12.50", on_hand=5)
    order = held_pipeline.run_by_hand(shopper.buys({"MUG-001": 2}), "process_payment")
    assert order.state == "PAID"
    held_pipeline.run_inline()  # what the policy sets off runs as in production
    mail.outbox.clear()
    return order


def assert_audit_clean() -> None:
    report = audit_invariants()
    assert report.ok, {check.name: check.examples for check in report.checks if check.violations}


def test_the_hold_end_is_read_from_stripes_capture_before_and_shown_on_the_order_page(
    shopper, make_product, fake_stripe, held_pipeline, manager
):
    fake_stripe.hold_seconds = 30 * HOUR
    order = an_order_held_in_paid(shopper, make_product, held_pipeline)

    lapses = Payment.objects.get(order=order).authorization_expires_at
    assert timedelta(hours=29) < lapses - timezone.now() <= timedelta(hours=30)
    page = manager.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    assert "Card hold lapses" in page
    assert "(in 29 h; the lapse policy, capture, acts 36 h before)" in page


def test_a_hold_about_to_lapse_is_captured_by_the_capture_policy_and_the_shopper_emailed(
    shopper, make_product, fake_stripe, held_pipeline, settings
):
    settings.AUTHORIZATION_LAPSE_POLICY = "capture"
    fake_stripe.hold_seconds = 2 * HOUR
    order = an_order_held_in_paid(shopper, make_product, held_pipeline)

    assert settle_lapsing_holds() == 1

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    [intent] = fake_stripe.intents_for(order.reference)
    assert intent["status"] == "succeeded"
    assert [m.subject for m in mail.outbox] == [f"Your order {order.reference} is confirmed"]
    assert settle_lapsing_holds() == 0  # settled: nothing left to do
    assert_audit_clean()


def test_a_hold_about_to_lapse_is_voided_by_the_void_policy_the_order_ended_and_the_shopper_told(
    shopper, make_product, fake_stripe, held_pipeline, settings
):
    settings.AUTHORIZATION_LAPSE_POLICY = "void"
    fake_stripe.hold_seconds = 2 * HOUR
    order = an_order_held_in_paid(shopper, make_product, held_pipeline)

    assert settle_lapsing_holds() == 1

    order.refresh_from_db()
    assert (order.state, order.failure_code) == ("FAILED", "authorisation_lapsing")
    [intent] = fake_stripe.intents_for(order.reference)
    assert intent["status"] == "canceled"
    assert (stock_of("MUG-001").on_hand, stock_of("MUG-001").reserved) == (5, 0)
    [email] = mail.outbox
    assert email.subject == f"We could not process your order {order.reference}"
    assert "authorisation was about to expire" in email.body
    assert order.events.get(step="settle_lapsing_hold").actor == "authorisation lapse policy"
    assert_audit_clean()


def test_a_hold_that_cannot_be_captured_is_voided_under_the_capture_policy(
    shopper, make_product, fake_stripe, held_pipeline, settings
):
    settings.AUTHORIZATION_LAPSE_POLICY = "capture"
    fake_stripe.hold_seconds = 2 * HOUR
    order = an_order_held_in_paid(shopper, make_product, held_pipeline)
    fake_stripe.fail_next("capture_intent", status=503, times=20)  # Stripe cannot capture now

    settle_lapsing_holds()

    order.refresh_from_db()
    assert order.state == "FAILED"
    assert fake_stripe.intents_for(order.reference)[0]["status"] == "canceled"
    assert any(m.subject.startswith("We could not process your order") for m in mail.outbox)
    assert_audit_clean()


def test_a_hold_far_from_lapsing_is_left_to_the_pipeline(shopper, make_product, fake_stripe, held_pipeline):
    order = an_order_held_in_paid(shopper, make_product, held_pipeline)  # 7 days, as Stripe's cards

    assert settle_lapsing_holds() == 0
    order.refresh_from_db()
    assert order.state == "PAID"


def test_the_home_tile_and_the_alarm_count_the_same_lapsing_holds(shopper, make_product, held_pipeline, settings, db):
    settings.ALARM_AUTHORIZATION_EXPIRY_HOURS = 24
    settings.ALARM_MIN_CLUSTERS = 0
    order = an_order_held_in_paid(shopper, make_product, held_pipeline)
    payment = Payment.objects.filter(order=order)

    payment.update(authorization_expires_at=timezone.now() + timedelta(hours=25))
    assert attention_counts()["authorization_expiring"] == 0
    assert "authorisations_lapsing" not in {f.rule for f in evaluate_alarms()}

    payment.update(authorization_expires_at=timezone.now() + timedelta(hours=23))
    assert attention_counts()["authorization_expiring"] == 1
    assert "authorisations_lapsing" in {f.rule for f in evaluate_alarms()}
