"""Outbound webhooks: a partner's receiver hears every order's facts, signed, in order, once
(docs/webhooks.md), and only public addresses are sent to."""

import json
import time

import jsonschema
import pytest
from django.db import transaction

from tests.support.processes import PROJECT_DIR
from tests.support.waiting import wait_until
from tests.support.webhook_receiver import Receiver, docs_verifier
from webhooks import delivery
from webhooks.admin import EndpointForm
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent

SCHEMA = json.loads((PROJECT_DIR / "docs" / "webhooks.schema.json").read_text())
ORDER_EVENTS = ["order.placed", "order.paid", "order.completed"]


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True  # the receiver is on loopback
    settings.WEBHOOK_BACKOFF_SECONDS = 0.05
    settings.WEBHOOK_BACKOFF_MAX_SECONDS = 0.2
    settings.WEBHOOK_READ_TIMEOUT_SECONDS = 1
    server = Receiver()
    yield server
    server.close()


def subscribe(url: str, event_types=(*ORDER_EVENTS, "order.failed", "order.cancelled")) -> WebhookEndpoint:
    from webhooks.outbox import OUTBOX

    endpoint = WebhookEndpoint.objects.create(url=url, event_types=list(event_types), description="warehouse")
    OUTBOX.subscriptions.forget()
    return endpoint


def deliver_all(endpoint: WebhookEndpoint, until) -> None:
    """Run the cluster's side by hand: the tick (tasks run inline here) until `until` holds."""
    wait_until(lambda: delivery.run_webhook_tick() is not None and until(), timeout=30, interval=0.05)


def test_a_receiver_hears_placed_paid_completed_in_order_once_each_signed(receiver, shopper, make_product):
    endpoint = subscribe(receiver.url)
    make_product("MUG-001", on_hand=20)

    order = shopper.buys({"MUG-001": 2})
    deliver_all(endpoint, lambda: len(receiver.accepted()) >= 3)

    assert receiver.accepted_types(order.reference) == ORDER_EVENTS
    verify = docs_verifier()
    for received in receiver.accepted():
        assert verify(endpoint.secret, received.headers, received.body)
        assert received.headers["webhook-id"] == received.event["id"]
        jsonschema.validate(received.event, SCHEMA)
    assert len({r.headers["webhook-id"] for r in receiver.accepted()}) == 3
    assert receiver.accepted()[-1].event["data"]["lines"] == [
        {"sku": "MUG-001", "quantity": 2, "unit_price": "12.50", "total": "25.00"}
    ]
    # Nothing more goes: each event was delivered exactly once.
    delivery.run_webhook_tick()
    assert len(receiver.received) == 3
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {"delivered"}


def test_a_signature_with_another_secret_or_an_old_timestamp_is_refused(receiver, shopper, make_product):
    endpoint = subscribe(receiver.url, ["order.placed"])
    make_product("MUG-001", on_hand=20)
    shopper.buys({"MUG-001": 1})
    deliver_all(endpoint, lambda: receiver.accepted())
    verify, received = docs_verifier(), receiver.accepted()[0]

    assert not verify(WebhookEndpoint(url=receiver.url).secret, received.headers, received.body)
    assert not verify(endpoint.secret, received.headers, received.body.replace(b"MUG-001", b"MUG-002"))
    stale = {**received.headers, "webhook-timestamp": str(int(time.time()) - 3600)}
    assert not verify(endpoint.secret, stale, received.body)


def test_a_receiver_failing_for_a_while_gets_every_event_afterwards_in_order(receiver, shopper, make_product):
    endpoint = subscribe(receiver.url)
    make_product("MUG-001", on_hand=20)
    receiver.failures_left = 6

    orders = [shopper.buys({"MUG-001": 1}) for _ in range(3)]
    deliver_all(endpoint, lambda: len(receiver.accepted()) >= 9)

    assert len([r for r in receiver.received if r.status == 500]) == 6
    for order in orders:
        assert receiver.accepted_types(order.reference) == ORDER_EVENTS
    assert len({r.headers["webhook-id"] for r in receiver.accepted()}) == 9
    failed = WebhookDelivery.objects.filter(attempts__gt=1)
    assert failed.exists() and set(failed.values_list("state", flat=True)) == {"delivered"}
    assert WebhookAttempt.objects.filter(status=500, answer="down for maintenance").count() == 6
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0 and endpoint.failing_since is None


def test_a_fact_rolled_back_writes_no_event(receiver, shopper, make_product):
    subscribe(receiver.url)
    make_product("MUG-001", on_hand=20)

    with pytest.raises(RuntimeError), transaction.atomic():
        shopper.buys({"MUG-001": 1})
        assert WebhookEvent.objects.exists()
        raise RuntimeError("the request failed after the order was written")

    assert not WebhookEvent.objects.exists()


def test_nothing_is_written_for_events_no_endpoint_wants(receiver, shopper, make_product):
    subscribe(receiver.url, ["stock.low"])
    make_product("MUG-001", on_hand=20)

    shopper.buys({"MUG-001": 1})

    assert not WebhookEvent.objects.exists()


def test_stock_falling_to_its_threshold_is_announced_once(receiver, shopper, make_product):
    endpoint = subscribe(receiver.url, ["stock.low"])
    make_product("MUG-001", on_hand=8)  # low at 5 available

    for _ in range(4):
        shopper.buys({"MUG-001": 1})
    deliver_all(endpoint, lambda: receiver.accepted())

    assert [r.event["data"] for r in receiver.accepted()] == [
        {"sku": "MUG-001", "available": 5, "on_hand": 6, "low_stock_threshold": 5}
    ]


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/hooks", "http://169.254.169.254/latest/meta-data/"])
def test_a_private_or_link_local_url_is_refused_when_saved(db, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    form = EndpointForm(data={"url": url, "event_types": ["order.paid"], "active": True})

    assert not form.is_valid()
    assert "private, loopback or link-local" in form.errors["url"][0]


def test_a_private_url_is_refused_at_send_time_too(receiver, settings, shopper, make_product):
    endpoint = subscribe(receiver.url, ["order.placed"])  # saved while allowed (or resolved elsewhere then)
    make_product("MUG-001", on_hand=20)
    shopper.buys({"MUG-001": 1})
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False

    delivery.deliver_to_endpoint(endpoint.pk)

    assert receiver.received == []
    attempt = WebhookAttempt.objects.get()
    assert attempt.status is None and "private, loopback or link-local" in attempt.error


def test_a_redirect_is_not_followed(receiver, settings, shopper, make_product):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Redirecting(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.send_response(307)
            self.send_header("Location", receiver.url)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = subscribe(f"http://127.0.0.1:{server.server_port}/", ["order.placed"])
        make_product("MUG-001", on_hand=20)
        shopper.buys({"MUG-001": 1})
        delivery.deliver_to_endpoint(endpoint.pk)
    finally:
        server.shutdown()
        server.server_close()

    assert receiver.received == []
    assert WebhookDelivery.objects.get().state == "pending"
    assert WebhookAttempt.objects.get().status == 307


def test_an_endpoint_failing_for_a_day_is_disabled_and_the_managers_are_emailed(
    receiver, settings, shopper, make_product, mailoutbox
):
    from django.contrib.auth.models import User

    User.objects.create_superuser("root", "root@shop.example", "not used here at all")
    settings.WEBHOOK_DISABLE_AFTER_SECONDS = 0
    endpoint = subscribe(receiver.url, ["order.placed"])
    receiver.failures_left = 100
    make_product("MUG-001", on_hand=20)
    shopper.buys({"MUG-001": 1})

    delivery.deliver_to_endpoint(endpoint.pk)

    endpoint.refresh_from_db()
    assert not endpoint.active and "HTTP 500" in endpoint.disabled_reason
    told = [m for m in mailoutbox if m.to == ["root@shop.example"]]
    assert len(told) == 1 and "Webhook endpoint disabled" in told[0].subject


def test_a_hanging_receiver_holds_a_worker_only_for_the_read_timeout(receiver, settings, shopper, make_product):
    settings.WEBHOOK_BACKOFF_SECONDS = 60
    endpoint = subscribe(receiver.url, ["order.placed"])
    make_product("MUG-001", on_hand=20)
    shopper.buys({"MUG-001": 1})
    receiver.hang.set()

    delivery.deliver_to_endpoint(endpoint.pk)

    attempt = WebhookAttempt.objects.get()
    assert "timed out" in attempt.error
    endpoint.refresh_from_db()
    assert endpoint.next_attempt_at is not None  # backing off: the next tick leaves it alone
    assert delivery.run_webhook_tick() == 0


def test_a_failed_delivery_redelivered_reaches_the_receiver(receiver, settings, shopper, make_product):
    settings.WEBHOOK_RETRY_SECONDS = 0
    endpoint = subscribe(receiver.url, ["order.placed"])
    make_product("MUG-001", on_hand=20)
    shopper.buys({"MUG-001": 1})
    delivery.deliver_to_endpoint(endpoint.pk)
    assert WebhookDelivery.objects.get().state == "failed"  # given up on before any attempt
    settings.WEBHOOK_RETRY_SECONDS = 3600

    delivery.redeliver(WebhookDelivery.objects.filter(state="failed"))
    deliver_all(endpoint, lambda: receiver.accepted())

    assert receiver.accepted_types() == ["order.placed"]


def test_a_test_event_reaches_only_its_endpoint(receiver, transactional_db):
    endpoint = subscribe(receiver.url, [])
    other = subscribe("http://127.0.0.1:9/never", [])

    delivery.send_test_event(endpoint)
    deliver_all(endpoint, lambda: receiver.accepted())

    assert receiver.accepted_types() == ["webhook.test"]
    assert not WebhookDelivery.objects.filter(endpoint=other).exists()


def test_an_endpoint_failing_past_the_alarm_threshold_fires_the_alarm(receiver, settings, shopper, make_product):
    from monitoring.alarms import evaluate_alarms

    settings.ALARM_WEBHOOK_ENDPOINT_FAILING_SECONDS = 0
    endpoint = subscribe(receiver.url, ["order.placed"])
    make_product("MUG-001", on_hand=20)
    assert "webhook_endpoints_failing" not in {f.rule for f in evaluate_alarms()}
    receiver.failures_left = 100
    shopper.buys({"MUG-001": 1})

    delivery.deliver_to_endpoint(endpoint.pk)

    firing = next(f for f in evaluate_alarms() if f.rule == "webhook_endpoints_failing")
    assert firing.details["endpoints"] == {receiver.url: "on, 1 waiting"}


def test_a_refund_is_heard_after_the_orders_earlier_events(receiver, shopper, make_product):
    from decimal import Decimal

    from backoffice import actions as manager_actions

    endpoint = subscribe(receiver.url, [*ORDER_EVENTS, "refund.created"])
    make_product("MUG-001", on_hand=20)
    order = shopper.buys({"MUG-001": 2})

    manager_actions.refund_order(
        order, manager="mo", reason="a chipped mug", refund_reason="damaged", amount=Decimal("5.00")
    )
    deliver_all(endpoint, lambda: len(receiver.accepted()) >= 4)

    assert [r.event["type"] for r in receiver.accepted()] == [*ORDER_EVENTS, "refund.created"]
    refund = receiver.accepted()[-1].event
    jsonschema.validate(refund, SCHEMA)
    assert {k: refund["data"][k] for k in ("order", "amount", "currency")} == {
        "order": order.reference,
        "amount": "5.00",
        "currency": "USD",
    }
