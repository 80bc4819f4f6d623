"""Unpaid reservations: how long an order may hold stock before paying, and how much.

An order is VALIDATED from the moment its stock is reserved until its payment is
authorised. That may take a while for a good reason (the shopper authenticating with 3-D
Secure) or for a bad one (someone taking a product off sale without paying), so:

- a reservation is held for RESERVATION_HOLD_SECONDS; the release pass, scheduled every
  minute, ends each unpaid order older than that PAYMENT_FAILED: its stock goes back on sale
  and its compensation cancels the payment, so a shopper who authenticates afterwards is
  told the order ended and is never charged (the stock may be sold to someone else by then);
- one client, by its address or by its email, holds at most HELD_UNITS_PER_CLIENT units in
  unpaid orders at once, and of one product at most SHOP_MAX_UNPAID_SHARE of its units for
  sale (`check_units_held`, at placement), so one unpaid order cannot take a product off
  sale (OWASP OAT-021, denial of inventory);
- a client whose unpaid order lapsed waits SHOP_HOLD_LAPSE_WAIT_SECONDS before it may hold
  again, twice as long after each further lapse (`record_lapse` when a hold is released,
  `check_lapse_wait` at placement); the marks live in the shared cache, with an expiry.
"""

import hashlib
import logging
import math
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import caches
from django.db import transaction
from django.db.models import QuerySet, Sum, Value
from django.db.models.functions import Upper
from django.utils import timezone

from framework.compiled_query import CompiledQuery, Mark, ip_address_mark
from orders import history
from orders.models import Order, OrderLine, lock_order, unpaid_condition
from orders.models import OrderState as S
from orders.transitions import end_order

logger = logging.getLogger(__name__)

RELEASE_BATCH = 200
MAX_LAPSE_WAIT_SECONDS = 24 * 3600
# The lapse marks' clock, as seconds since the epoch (shared by every process); tests move it.
clock = time.time
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


class UnpaidShareExceeded(Exception):
    """The order would leave the client holding more of one product unpaid than its share."""

    def __init__(self, sku: str, name: str, allowed: int, held: int):
        already = f" (you already hold {held} in unpaid orders)" if held else ""
        super().__init__(
            f"You can hold at most {allowed} of {name} until your payment goes through{already}: "
            "lower the quantity, or complete the payment of your other order."
        )
        self.sku = sku


class HoldsLapsedRecently(Exception):
    """The client's unpaid orders lapsed recently: it may hold stock again in `wait` seconds."""

    def __init__(self, wait: int):
        minutes = max(1, math.ceil(wait / 60))
        super().__init__(
            "Your earlier order was not paid in time, so its items went back on sale. "
            f"You can place a new order in {minutes} minute{'s' if minutes > 1 else ''}."
        )
        self.wait = wait


def _held_units(email: str, address: str | None = None) -> QuerySet:
    """(product id, units) a client holds in unpaid orders, by its email (any case) or address."""
    # Each half through its own partial index (order_unpaid_by_email, order_unpaid_by_address):
    # under one OR the planner read every client's unpaid orders and filtered them, a cost
    # that grew with the sale (EXPLAIN: 3.9 ms with 5,000 unpaid orders, 0.6 ms this way).
    # No ordering: SQLite refuses an ORDER BY inside the UNION's parts (the model orders by date).
    # Upper(email) = Upper(value), the index's expression, not `iexact`, which escapes its
    # value for LIKE on SQLite (framework.compiled_query passes values through unchanged).
    # The state as the indexes' conditions write it, which only they answer.
    unpaid = Order.objects.filter(unpaid_condition()).order_by()
    same_client = unpaid.alias(email_upper=Upper("email")).filter(email_upper=Upper(Value(email))).values("pk")
    if address is not None:
        same_client = same_client.union(unpaid.filter(placed_from=address).values("pk"))
    return (
        OrderLine.objects.filter(order__in=same_client)
        .order_by()
        .values("product_id")
        .annotate(units=Sum("quantity"))
        .values_list("product_id", "units")
    )


_HELD_BY_EMAIL = CompiledQuery(_held_units, email=Mark("\x1eemail\x1e"))
_HELD_BY_EMAIL_OR_ADDRESS = CompiledQuery(_held_units, email=Mark("\x1eemail\x1e"), address=ip_address_mark())


def check_units_held(*, email: str, client_address: str | None, lines: Sequence[OrderLine]) -> None:
    """Refuse an order that would take the client's units in unpaid orders past the cap, or
    its units of one product past SHOP_MAX_UNPAID_SHARE of that product's units for sale.

    The client is both its address and its email, so neither a new address nor a new
    email alone lifts the cap. Concurrent placements by one client may each pass once; the
    placement throttle bounds how many there are. Each line's product carries its
    `units_for_sale`, read with the product (no statement of its own).
    """
    units = sum(line.quantity for line in lines)
    limit = settings.HELD_UNITS_PER_CLIENT
    # Built by the ORM once per process (framework.compiled_query): building it on each
    # request was a quarter of the accepting request's Python calls.
    if client_address:
        found = _HELD_BY_EMAIL_OR_ADDRESS.rows(email=email, address=client_address)
    else:
        found = _HELD_BY_EMAIL.rows(email=email)
    held_of = {product_id: int(held) for product_id, held in found}
    held = sum(held_of.values())
    if held + units > limit:
        raise TooManyUnitsHeld(held, limit)
    share = settings.SHOP_MAX_UNPAID_SHARE
    if share >= 1:
        return
    for line in lines:
        mine = held_of.get(line.product_id, 0)
        for_sale = (getattr(line.product, "units_for_sale", None) or 0) + mine
        # At least one unit: the last unit of a product is still for anyone to buy.
        allowed = max(1, math.floor(share * for_sale))
        if mine + line.quantity > allowed:
            raise UnpaidShareExceeded(line.sku, line.name, allowed, mine)


def lapse_key(ident: str) -> str:
    """The cache key of the lapse mark of one client address or one email (any case)."""
    # Hashed and short: the keys are read along with the rate limits' on every placement.
    return "lapse:" + hashlib.sha256(ident.strip().lower().encode()).hexdigest()[:20]


def lapse_keys(*, email: str, client_address: str | None) -> list[str]:
    """The cache keys of a client's lapse marks: its email's and its address's."""
    return [lapse_key(ident) for ident in (email, client_address) if ident]


def check_lapse_wait(*, email: str, client_address: str | None, read: Mapping[str, object] | None = None) -> None:
    """Refuse (`HoldsLapsedRecently`) a client still waiting after its unpaid orders lapsed.

    `read` holds marks already read with the rate limits' counts (framework.throttling's
    read-along); marks not in it are read here. A cache that cannot be reached lets the
    order through, as the rate limits do.
    """
    keys = lapse_keys(email=email, client_address=client_address)
    marks = dict(read or {})
    if missing := [key for key in keys if key not in marks]:
        try:
            marks.update(caches["default"].get_many(missing))
        except Exception as error:  # the cache backend's own errors differ by backend
            logger.warning("lapse marks not read, their cache is unavailable: %s", error)
            return
    now = clock()
    waits = [mark[1] - now for key in keys if isinstance(mark := marks.get(key), tuple)]
    if waits and (wait := max(waits)) > 0:
        raise HoldsLapsedRecently(math.ceil(wait))


def record_lapse(order: Order) -> None:
    """Mark the client of an order whose hold lapsed: it waits before it may hold again,
    SHOP_HOLD_LAPSE_WAIT_SECONDS doubled for each lapse the cache still remembers."""
    cache = caches["default"]
    now = clock()
    try:
        for key in lapse_keys(email=order.email, client_address=order.placed_from):
            mark = cache.get(key)
            lapses = (mark[0] if isinstance(mark, tuple) else 0) + 1
            wait = min(settings.SHOP_HOLD_LAPSE_WAIT_SECONDS * 2 ** (lapses - 1), MAX_LAPSE_WAIT_SECONDS)
            # Remembered for twice the wait: a client that lapses again soon after waits longer.
            cache.set(key, (lapses, now + wait), timeout=2 * wait)
    except Exception as error:  # the cache backend's own errors differ by backend
        logger.warning("lapse of %s not recorded, its cache is unavailable: %s", order.reference, error)


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
        transaction.on_commit(lambda: record_lapse(order))
    return True
