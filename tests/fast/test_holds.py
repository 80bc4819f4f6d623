"""Holds and breakers in the pipeline, in process: a held or broken provider's step waits in
its state without spending attempts, the shopper reads "waiting", the manager the reason, and
the order goes on once the hold is released or the provider answers again."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from monitoring.alarms import evaluate_alarms
from orders import holds, pipeline
from orders.models import EventKind, PipelineHold, ScheduledRetry
from payments.models import Payment
from tests.support.due_retries import run_due_retries


@pytest.fixture(autouse=True)
def _quick_waits(settings):
    settings.STEP_WAIT_RECHECK_SECONDS = 0.05


def shoppers_view(api, order) -> dict:
    response = api.get(f"/api/orders/{order.reference}/")
    assert response.status_code == 200
    return response.json()


def test_a_hold_on_captures_keeps_the_order_paid_without_a_capture_until_released(
    shopper, make_product, fake_stripe, api
):
    make_product("MUG-001", on_hand=5)
    hold = holds.place_hold(side="captures", reason="Stripe incident INC-42", manager="maria")

    order = shopper.buys({"MUG-001": 1})

    order.refresh_from_db()
    assert order.state == "PAID"
    assert fake_stripe.calls_of("capture_intent") == []
    [held] = order.events.filter(kind=EventKind.STEP_HELD)
    assert (held.step, held.actor, held.summary) == ("update_inventory", "maria", "held: Stripe incident INC-42")
    view = shoppers_view(api, order)
    assert view["waiting"] == "Your payment is waiting to be completed; there is nothing you need to do."
    assert "INC-42" not in str(view)

    assert holds.release_hold(hold, reason="Stripe is back", manager="maria") == 1
    run_due_retries()

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert len(fake_stripe.calls_of("capture_intent")) == 1
    [released] = order.events.filter(kind=EventKind.HOLD_RELEASED)
    assert (released.actor, released.summary) == ("maria", "The hold on Captures was released: Stripe is back")
    assert shoppers_view(api, order)["waiting"] is None


def test_a_held_step_looking_again_spends_no_attempt_and_writes_no_more_history(shopper, make_product):
    make_product("MUG-001", on_hand=5)
    holds.place_hold(side="payments", reason="Card provider incident", manager="maria")
    order = shopper.buys({"MUG-001": 1})

    for _ in range(5):
        pipeline.run_due_retry(ScheduledRetry.objects.get(order=order).pk)

    order.refresh_from_db()
    assert order.state == "VALIDATED"
    retry = ScheduledRetry.objects.get(order=order)
    assert (retry.step, retry.attempt, retry.waiting_for) == ("process_payment", 0, "held: Card provider incident")
    assert order.events.filter(step="process_payment").count() == 1  # the one "held" event


def test_a_hold_released_in_time_resumes_orders_oldest_first(shopper, make_product):
    make_product("MUG-001", on_hand=5)
    hold = holds.place_hold(side="emails", reason="SMTP relay down", manager="maria")
    orders = [shopper.buys({"MUG-001": 1}) for _ in range(3)]
    assert {o.state for o in _fresh(orders)} == {"CONFIRMED"}

    holds.release_hold(hold, reason="relay back", manager="maria")
    resumed = list(ScheduledRetry.objects.order_by("due_at", "order_id").values_list("order_id", flat=True))
    run_due_retries()

    assert resumed == [o.pk for o in orders]
    assert {o.state for o in _fresh(orders)} == {"COMPLETED"}


def test_a_side_is_held_once_and_a_hold_needs_a_reason(db):
    with pytest.raises(holds.HoldRefused, match="reason"):
        holds.place_hold(side="emails", reason="  ", manager="maria")
    hold = holds.place_hold(side="emails", reason="SMTP down", manager="maria")
    with pytest.raises(holds.HoldRefused, match="held already by maria"):
        holds.place_hold(side="emails", reason="again", manager="tom")
    with pytest.raises(holds.HoldRefused, match="reason"):
        holds.release_hold(hold, reason="", manager="tom")
    holds.release_hold(hold, reason="back", manager="tom")
    with pytest.raises(holds.HoldRefused, match="released already"):
        holds.release_hold(hold, reason="back", manager="tom")
    assert holds.holds_on() == {}


def test_stripe_failing_opens_the_breaker_and_the_order_waits_then_completes_with_one_charge(
    shopper, make_product, fake_stripe, settings, api
):
    settings.BREAKER_FAILURES = 2
    settings.BREAKER_COOL_DOWN_SECONDS = 0.1
    make_product("MUG-001", on_hand=5)
    fake_stripe.fail_next("create_intent", status=500, times=3)  # two open it, the first probe fails

    order = shopper.buys({"MUG-001": 1})

    order.refresh_from_db()
    assert order.state == "VALIDATED"
    assert shoppers_view(api, order)["waiting"] == (
        "Your payment is waiting to go through; there is nothing you need to do."
    )
    waited = order.events.filter(kind=EventKind.STEP_WAITING, step="process_payment")
    assert "stripe is not answering (circuit breaker open)" in waited.first().summary

    run_due_retries()

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert len(fake_stripe.intents_for(order.reference)) == 1
    assert not order.events.filter(outcome="failed").exists()


def _fresh(orders):
    for order in orders:
        order.refresh_from_db()
    return orders


def test_a_manager_places_and_releases_a_hold_from_the_back_office_and_the_page_shows_it(manager):
    refused = manager.post("/admin/orders/pipelinehold/place/", {"side": "receipts", "reason": " "})
    assert refused.status_code == 200 and PipelineHold.objects.count() == 0

    placed = manager.post("/admin/orders/pipelinehold/place/", {"side": "receipts", "reason": "S3 outage"})

    assert placed.status_code == 302
    hold = PipelineHold.objects.get()
    assert (hold.side, hold.placed_by, hold.is_on) == ("receipts", "manager", True)
    page = manager.get("/admin/monitoring/").content.decode()
    assert "Receipts" in page and "S3 outage" in page
    assert "pipeline_held" in {f.rule for f in evaluate_alarms()}

    released = manager.post(f"/admin/orders/pipelinehold/{hold.pk}/release/", {"reason": "S3 back"})

    assert released.status_code == 302
    hold.refresh_from_db()
    assert (hold.released_by, hold.release_reason, hold.is_on) == ("manager", "S3 back", False)
    assert "pipeline_held" not in {f.rule for f in evaluate_alarms()}


def test_held_captures_near_the_end_of_an_authorisation_fire_the_urgent_alarm(settings, shopper, make_product):
    settings.ALARM_MIN_CLUSTERS = 0
    settings.ALARM_EMAILS = ["oncall@shop.example"]
    make_product("MUG-001", on_hand=5)
    holds.place_hold(side="captures", reason="Stripe incident", manager="maria")
    order = shopper.buys({"MUG-001": 1})
    assert {f.rule for f in evaluate_alarms()} >= {"pipeline_held"}
    assert "held_captures_lapsing" not in {f.rule for f in evaluate_alarms()}

    # The card hold now lapses within the alarm's warning (the provider's end, kept on the payment).
    lapses_at = timezone.now() + timedelta(hours=settings.ALARM_AUTHORIZATION_EXPIRY_HOURS - 1)
    Payment.objects.filter(order=order).update(authorization_expires_at=lapses_at)

    assert "held_captures_lapsing" in {f.rule for f in evaluate_alarms()}
    urgent = [m for m in mail.outbox if "URGENT Held captures let authorisations lapse" in m.subject]
    assert len(urgent) == 1
    order.refresh_from_db()
    assert order.needs_attention and order.state == "PAID"
