"""Reads of orders for the API and the back office."""

import hashlib
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Min, Prefetch, QuerySet
from django.utils import timezone

from orders.models import FINAL_STATES, Order, OrderEvent, OrderState

# Named rather than "not final": a list of states reads only their ranges of the
# (state, updated_at) index, where NOT IN scans every order ever placed (400 ms at a million).
OPEN_STATES = tuple(state for state in OrderState if state not in FINAL_STATES)


def order_for_shopper(reference: str) -> Order | None:
    """One order with everything its status page shows, in a fixed number of queries."""
    return (
        Order.objects.select_related("payment", "receipt")
        .prefetch_related("lines", Prefetch("events", queryset=OrderEvent.objects.order_by("id")))
        .filter(reference=reference)
        .first()
    )


def order_version(reference: str) -> str | None:
    """A tag that changes whenever anything the shopper's view of the order shows changes, in one
    query: every change of state, step, payment or refund writes a history event, and the
    payment and receipt rows are read besides. None for an unknown order."""
    row = (
        Order.objects.filter(reference=reference)
        .annotate(last_event=Max("events__id"))
        .values_list(
            "state",
            "updated_at",
            "last_event",
            "payment__status",
            "payment__client_secret",
            "payment__amount_refunded",
            "receipt__stored_at",
        )
        .first()
    )
    if row is None:
        return None
    return hashlib.sha256(repr(row).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class OpenOrders:
    """The orders standing in one non-final state."""

    count: int
    oldest_age_seconds: float  # since the oldest of them last changed: a stuck order shows here


def open_orders_by_state(now: datetime | None = None) -> dict[str, OpenOrders]:
    """Every non-final state with its orders' count and the age of the oldest, in one
    query on the (state, updated_at) index; states with no order are absent."""
    now = now or timezone.now()
    rows = (
        Order.objects.filter(state__in=OPEN_STATES)
        .order_by()
        .values("state")
        .annotate(count=Count("id"), oldest=Min("updated_at"))
    )
    return {row["state"]: OpenOrders(row["count"], (now - row["oldest"]).total_seconds()) for row in rows}


def open_orders_untouched_since(cutoff: datetime) -> QuerySet[Order]:
    """Orders in a non-final state that have not changed since `cutoff`, oldest first
    (the (state, updated_at) index): stuck, or merely slow."""
    return Order.objects.filter(state__in=OPEN_STATES, updated_at__lt=cutoff).order_by("updated_at")
