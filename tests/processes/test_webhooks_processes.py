"""Webhooks sent by a real `qcluster`, killed with SIGKILL mid-delivery: nothing is lost, and
what is sent twice carries the same `webhook-id`, for the receiver to dedupe."""

import pytest

from orders.models import Order
from tests.support.waiting import wait_until
from tests.support.webhook_receiver import Receiver, docs_verifier
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

pytestmark = pytest.mark.slow

ORDER_EVENTS = ["order.placed", "order.paid", "order.completed"]
CLUSTER_ENV = {
    "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",  # the receiver is on loopback
    "WEBHOOK_BACKOFF_SECONDS": "0.2",
    "WEBHOOK_BACKOFF_MAX_SECONDS": "1",
    "WEBHOOK_LEASE_SECONDS": "3",  # a killed worker's endpoint is taken up again after this
}


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def test_killing_the_cluster_mid_delivery_loses_nothing_and_repeats_only_what_has_the_same_id(
    shop, make_product, receiver
):
    endpoint = WebhookEndpoint.objects.create(url=receiver.url, event_types=ORDER_EVENTS)
    make_product("MUG-001", on_hand=50)
    receiver.delay = 0.5  # each event is in flight long enough to be killed over
    shop.extra_env.update(CLUSTER_ENV)
    shop.start_web()
    cluster = shop.start_cluster()
    references = [shop.place_order([("MUG-001", 1)])["reference"] for _ in range(3)]

    wait_until(lambda: len(receiver.received) >= 2, timeout=60, message=shop.logs)
    cluster.kill()  # SIGKILL, mid-delivery: one event is taken in and never answered
    shop.start_cluster()

    def all_delivered() -> bool:
        every_event = set(WebhookEvent.objects.values_list("message_id", flat=True))
        received = {r.headers["webhook-id"] for r in receiver.received}
        return (
            len(every_event) == 9
            and received >= every_event
            and not WebhookDelivery.objects.exclude(state="delivered").exists()
        )

    wait_until(
        all_delivered,
        timeout=120,
        message=lambda: f"{len(receiver.received)} received\n{shop.logs()}",
    )
    every_event = set(WebhookEvent.objects.values_list("message_id", flat=True))
    assert len(every_event) == 9 and Order.objects.filter(state="COMPLETED").count() == 3
    # Deduped by id, as a receiver does, each order's events came once each, in order.
    verify, seen, heard = docs_verifier(), set(), {reference: [] for reference in references}
    for received in receiver.received:
        assert verify(endpoint.secret, received.headers, received.body)
        if received.headers["webhook-id"] not in seen:
            seen.add(received.headers["webhook-id"])
            heard[received.event["data"]["reference"]].append(received.event["type"])
    assert seen == every_event
    assert heard == {reference: ORDER_EVENTS for reference in references}
    # What came twice came with the same id: the one in flight when the cluster died.
    assert len(receiver.received) - len(seen) <= 1
