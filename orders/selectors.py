"""Reads of orders for the API and the back office."""

from django.db.models import Prefetch

from orders.models import Order, OrderEvent


def order_for_shopper(reference: str) -> Order | None:
    """One order with everything its status page shows, in a fixed number of queries."""
    return (
        Order.objects.select_related("payment", "receipt")
        .prefetch_related("lines", Prefetch("events", queryset=OrderEvent.objects.order_by("id")))
        .filter(reference=reference)
        .first()
    )
