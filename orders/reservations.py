"""Unpaid reservations: how long an order may hold stock before paying, and how much.

An order is VALIDATED from the moment its stock is reserved until its payment is
authorised. That may take a while for a good reason (the shopper authenticating with 3-D
Secure) or for a bad one (someone taking a product off sale without paying), so:

- a reservation is held for RESERVATION_HOLD_SECONDS; the release pass, scheduled every
  minute, ends each unpaid order older than that PAYMENT_FAILED: its stock goes back on sale
  and its compensation cancels the payment, so a shopper who authenticates afterwards is
  told the order ended and is never charged (the stock may be sold to someone else by then);
- one client, by its address or by its email, holds at most HELD_UNITS_PER_CLIENT units in
  unpaid orders at once (`check_units_held`, at placement).
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from orders import history
from orders.models import Order, OrderLine, lock_order
from orders.models import OrderState as S
from orders.transitions import end_order

logger = logging.getLogger(__name__)

RELEASE_BATCH = 200
EXPIRED_REASON = "The payment was not completed in time, so the goods were released; no money was taken."


class TooManyUnitsHeld(Exception):
    """The client already holds as many units in unpaid orders as one client may."""

    def __init__(self, held: int, limit: int):
        super().__init__(
            f"You already hold {held} units in unpaid orders (at most {limit} at once): "
            "complete their payment, or wait until they are released."
        )
        self.held = held
        self.limit = limit


def check_units_held(*, email: str, client_address: str | None, units: int) -> None:
    """Refuse an order that would take the client's units in unpaid orders past the cap.

    The client is both its address and its email, so neither a new address nor a new
    email alone lifts the cap. Concurrent placements by one client may each pass once; the
    placement throttle bounds how many there are.
    """
    limit = settings.HELD_UNITS_PER_CLIENT
    # Each half through its own partial index (order_unpaid_by_email, order_unpaid_by_address):
    # under one OR the planner read every client's unpaid orders and filtered them, a cost
    # that grew with the sale (EXPLAIN: 3.9 ms with 5,000 unpaid orders, 0.6 ms this way).
    # No ordering: SQLite refuses an ORDER BY inside the UNION's parts (the model orders by date).
    unpaid = Order.objects.filter(state=S.VALIDATED).order_by()
    same_client = unpaid.filter(email__iexact=email).values("pk")
    if client_address:
        same_client = same_client.union(unpaid.filter(placed_from=client_address).values("pk"))
    held = OrderLine.objects.filter(order__in=same_client).aggregate(units=Sum("quantity"))["units"] or 0
    if held + units > limit:
        raise TooManyUnitsHeld(held, limit)


def hold_deadline() -> datetime:
    """Orders validated before this have held their stock unpaid for too long."""
    return timezone.now() - timedelta(seconds=settings.RESERVATION_HOLD_SECONDS)


def release_expired_reservations() -> int:
    """End every unpaid order whose reservation outlived RESERVATION_HOLD_SECONDS; how many.

    Reads the expired orders oldest first in batches through the partial index on unpaid
    orders, and ends each in its own short transaction, so the pass scales with the number
    of expired orders and never holds many locks.
    """
    released = 0
    after_pk = 0
    deadline = hold_deadline()
    while True:
        batch = list(
            Order.objects.filter(state=S.VALIDATED, created_at__lt=deadline, pk__gt=after_pk)
            .order_by("pk")
            .values_list("pk", flat=True)[:RELEASE_BATCH]
        )
        for order_id in batch:
            released += release_reservation(order_id, deadline)
        if len(batch) < RELEASE_BATCH:
            break
        after_pk = batch[-1]
    if released:
        hold = settings.RESERVATION_HOLD_SECONDS
        logger.warning("released the stock of %d unpaid orders held past %ss", released, hold)
    return released


def release_reservation(order_id: int, deadline: datetime) -> bool:
    """End one unpaid order validated before `deadline`; False when it moved on meanwhile."""
    with transaction.atomic():
        order = lock_order(order_id)
        if order.state != S.VALIDATED or order.created_at >= deadline:
            return False
        run = history.start_run("release_reservation", order, actor=history.SWEEPER)
        end_order(order, S.PAYMENT_FAILED, run, code="reservation_expired", reason=EXPIRED_REASON)
    return True
