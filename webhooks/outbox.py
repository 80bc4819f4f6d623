"""The outbox: a fact an endpoint subscribes to becomes a `WebhookEvent` and one
`WebhookDelivery` per endpoint, written in the transaction of the fact itself, so a crash
can neither lose an event nor send one for a change that rolled back. The cluster sends
them afterwards (webhooks/delivery.py); nothing is sent from here.
"""

import time
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from framework.facts import Fact
from webhooks.models import PAYLOAD_VERSION, WebhookDelivery, WebhookEndpoint, WebhookEvent


@dataclass
class Subscriptions:
    """Which active endpoints want which event types, as last read by this process."""

    by_type: dict[str, list[int]] = field(default_factory=dict)
    read_at: float = float("-inf")

    def endpoints_for(self, event_type: str) -> list[int]:
        if time.monotonic() - self.read_at > settings.WEBHOOK_SUBSCRIPTIONS_SECONDS:
            self.by_type = subscriptions()
            self.read_at = time.monotonic()
        return self.by_type.get(event_type, [])

    def forget(self) -> None:
        """Read again at the next fact (an endpoint was saved in this process)."""
        self.read_at = float("-inf")


def subscriptions() -> dict[str, list[int]]:
    """The ids of the active endpoints subscribed to each event type."""
    by_type: dict[str, list[int]] = {}
    for endpoint_id, event_types in WebhookEndpoint.objects.filter(active=True).values_list("pk", "event_types"):
        for event_type in event_types or []:
            by_type.setdefault(event_type, []).append(endpoint_id)
    return by_type


class Outbox:
    """The listener of framework/facts.py that writes the outbox."""

    def __init__(self) -> None:
        self.subscriptions = Subscriptions()

    def wants(self, fact_type: str) -> bool:
        return bool(self.subscriptions.endpoints_for(fact_type))

    def hear(self, fact: Fact) -> None:
        write_event(
            fact.type, key=fact.key, data=fact.describe(), endpoint_ids=self.subscriptions.endpoints_for(fact.type)
        )


OUTBOX = Outbox()


def write_event(event_type: str, *, key: str, data: dict, endpoint_ids: list[int]) -> WebhookEvent:
    """Write the event and its deliveries, in the caller's transaction."""
    event = WebhookEvent(type=event_type, key=key)
    event.payload = {
        "id": event.message_id,
        "type": event_type,
        "version": PAYLOAD_VERSION,
        "timestamp": timezone.now().isoformat(),
        "data": data,
    }
    event.save()
    WebhookDelivery.objects.bulk_create(WebhookDelivery(event=event, endpoint_id=pk) for pk in endpoint_ids)
    return event
