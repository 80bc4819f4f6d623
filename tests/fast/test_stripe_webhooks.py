"""POST /api/payments/stripe/webhook: signatures, storing each event once, processing in the queue."""

import json
import logging
import time
from decimal import Decimal

from orders.models import Order
from payments.gateways import get_gateway
from payments.models import StripeEvent
from tests.support.fake_stripe import WEBHOOK_URL, deliver, sign


def a_paid_order(shopper, make_product, fake_stripe, *, pay_with="pm_card_visa") -> tuple[Order, dict]:
    make_product("MUG-001", price="12.50", on_hand=5)
    order = shopper.buys({"MUG-001": 2}, pay_with=pay_with)
    [intent] = fake_stripe.intents_for(order.reference)
    return order, intent


def test_a_signed_event_is_accepted_stored_and_processed(api, shopper, make_product, fake_stripe):
    order, intent = a_paid_order(shopper, make_product, fake_stripe)
    event = fake_stripe.event("payment_intent.succeeded", intent["id"])

    response = deliver(api, event)

    assert response.status_code == 200
    assert response.json() == {"received": True, "duplicate": False}
    stored = StripeEvent.objects.get()
    assert (stored.event_id, stored.type) == (event["id"], "payment_intent.succeeded")
    assert stored.processed_at is not None


def test_a_body_changed_after_signing_is_refused_and_nothing_is_written(
    api, shopper, make_product, fake_stripe, caplog
):
    order, intent = a_paid_order(shopper, make_product, fake_stripe)
    event = fake_stripe.dispute(intent["id"])
    signed = json.dumps(event)
    tampered = signed.replace('"fraudulent"', '"duplicate"')

    with caplog.at_level(logging.WARNING):
        response = deliver(api, tampered, signature=sign(signed, "whsec_test_secret"))

    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0
    order.refresh_from_db()
    assert not order.needs_attention
    assert any("refused a Stripe webhook" in r.getMessage() for r in caplog.records)


def test_an_event_signed_with_another_secret_is_refused(api, shopper, make_product, fake_stripe):
    order, intent = a_paid_order(shopper, make_product, fake_stripe)

    response = deliver(api, fake_stripe.dispute(intent["id"]), secret="whsec_someone_else")

    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0


def test_a_signature_older_than_the_tolerance_is_refused_as_a_replay(api, shopper, make_product, fake_stripe, settings):
    order, intent = a_paid_order(shopper, make_product, fake_stripe)
    event = fake_stripe.dispute(intent["id"])

    stale = deliver(api, event, timestamp=int(time.time()) - settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS - 60)
    fresh_enough = deliver(api, event, timestamp=int(time.time()) - settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS + 60)

    assert stale.status_code == 400
    assert fresh_enough.status_code == 200
    assert StripeEvent.objects.count() == 1


def test_a_missing_signature_or_a_body_that_is_no_event_is_refused(api, db, fake_stripe):
    unsigned = api.generic("POST", WEBHOOK_URL, "{}", content_type="application/json")
    not_json = deliver(api, "not json")
    not_an_event = deliver(api, json.dumps({"id": "evt_1", "type": "x"}))

    assert [r.status_code for r in (unsigned, not_json, not_an_event)] == [400, 400, 400]
    assert StripeEvent.objects.count() == 0


def test_webhooks_are_refused_when_stripe_is_not_configured(api, transactional_db, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""

    response = deliver(api, {"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {}}})

    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0


def test_a_dispute_flags_the_order_for_a_manager_once_however_often_it_is_delivered(
    api, shopper, make_product, fake_stripe, caplog
):
    order, intent = a_paid_order(shopper, make_product, fake_stripe)
    event = fake_stripe.dispute(intent["id"], reason="product_not_received")

    with caplog.at_level(logging.ERROR):
        first = deliver(api, event)
        second = deliver(api, event)

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["duplicate"] is True
    assert StripeEvent.objects.count() == 1
    order.refresh_from_db()
    assert order.needs_attention
    [flag] = order.events.filter(step="stripe_dispute")
    assert "product_not_received" in flag.summary and "25.00 USD" in flag.summary
    assert any("needs attention" in r.getMessage() for r in caplog.records)


def test_a_new_dispute_flags_an_order_a_manager_marked_handled_again(api, shopper, make_product, fake_stripe):
    from backoffice import actions

    order, intent = a_paid_order(shopper, make_product, fake_stripe)
    first = fake_stripe.dispute(intent["id"])
    deliver(api, first)
    actions.mark_handled(order, manager="boss", reason="Evidence sent to the bank", action_token="t1")
    order.refresh_from_db()
    assert not order.needs_attention

    deliver(api, first)  # the same dispute again (a redelivery): already handled
    order.refresh_from_db()
    assert not order.needs_attention

    deliver(api, fake_stripe.dispute(intent["id"], reason="duplicate"))  # a new one

    order.refresh_from_db()
    assert order.needs_attention
    assert [e.kind for e in order.events.filter(step__in=["stripe_dispute", "mark_handled"])] == [
        "flagged",
        "marked_handled",
        "flagged",
    ]


def test_a_refund_made_in_stripes_dashboard_is_recorded_once(api, shopper, make_product, fake_stripe):
    order, intent = a_paid_order(shopper, make_product, fake_stripe)
    get_gateway().refund(provider_reference=intent["id"], amount_minor=500, idempotency_key="dashboard-refund")
    event = fake_stripe.event("charge.refunded")

    deliver(api, event)
    deliver(api, event)
    deliver(api, fake_stripe.event("payment_intent.succeeded", intent["id"]))  # late, and about an older state

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert (order.payment.status, order.payment.amount_refunded) == ("partially_refunded", Decimal("5.00"))
    [note] = order.events.filter(step="stripe_webhook")
    assert "5.00 USD refunded" in note.summary


def test_events_arriving_out_of_order_end_as_the_provider_says(api, shopper, make_product, fake_stripe):
    order, intent = a_paid_order(shopper, make_product, fake_stripe, pay_with="pm_card_threeDSecure2Required")
    authorised = fake_stripe.authenticate(intent["id"])
    # A failure reported about this intent, older than the authorisation, arrives first.
    stale_failure = {
        **authorised,
        "id": "evt_stale_failure",
        "type": "payment_intent.payment_failed",
        "created": authorised["created"] - 30,
        "data": {"object": {**authorised["data"]["object"], "status": "requires_payment_method"}},
    }

    deliver(api, stale_failure)
    order.refresh_from_db()
    assert order.state == "COMPLETED"

    deliver(api, authorised)
    deliver(api, fake_stripe.event("payment_intent.requires_action", intent["id"]))

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert [e.to_state for e in order.events.exclude(to_state="")] == ["VALIDATED", "PAID", "CONFIRMED", "COMPLETED"]
    assert len(fake_stripe.calls_of("capture_intent")) == 1


def test_money_arriving_after_the_order_ended_is_given_back(api, shopper, make_product, fake_stripe):
    order, intent = a_paid_order(shopper, make_product, fake_stripe, pay_with="pm_card_threeDSecure2Required")
    deliver(api, fake_stripe.authenticate(intent["id"], succeed=False))
    order.refresh_from_db()
    assert order.state == "PAYMENT_FAILED"

    # The shopper's page, still open, confirms the same intent with another card.
    deliver(api, fake_stripe.confirm_on_page(intent["id"], "pm_card_mastercard"))

    order.refresh_from_db()
    assert order.state == "PAYMENT_FAILED"
    assert fake_stripe.intents[intent["id"]]["status"] == "canceled"
    assert order.payment.status == "voided"


def test_an_event_for_a_payment_of_no_known_order_is_stored_and_ignored(api, transactional_db, fake_stripe):
    event = {
        "id": "evt_foreign",
        "object": "event",
        "type": "payment_intent.succeeded",
        "data": {"object": {"id": "pi_foreign", "object": "payment_intent", "status": "succeeded", "metadata": {}}},
    }

    response = deliver(api, event)

    assert response.status_code == 200
    assert StripeEvent.objects.get().processed_at is not None


def test_the_webhook_answers_at_once_and_leaves_the_work_to_the_task_queue(
    api, shopper, make_product, fake_stripe, held_pipeline
):
    held_pipeline.run_inline()
    order, intent = a_paid_order(shopper, make_product, fake_stripe)
    held_pipeline.hold()  # from here on, tasks wait in the queue
    event = fake_stripe.dispute(intent["id"])

    response = deliver(api, event)

    stored = StripeEvent.objects.get()
    assert response.status_code == 200
    assert stored.processed_at is None
    assert held_pipeline.queued() == [("payments.tasks.process_stripe_event", (stored.pk,))]
    order.refresh_from_db()
    assert not order.needs_attention

    from payments.tasks import process_stripe_event

    process_stripe_event(stored.pk)
    order.refresh_from_db()
    assert order.needs_attention
