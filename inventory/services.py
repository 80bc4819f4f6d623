"""Stock changes. Every one locks stock rows in primary-key order, changes them with
atomic updates (never by writing back a number read earlier) and, when on-hand units
change, writes a ledger line, so the ledger always sums to the stock on hand.
"""

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, QuerySet, Sum

from framework import facts
from framework.activity import record_staff_activity
from framework.compiled_query import CompiledQuery, CompiledUpdate, Mark
from inventory.models import Product, Stock, StockMovement


@dataclass(frozen=True)
class StockLine:
    """What one line of an order takes from stock."""

    product_id: int
    quantity: int


@dataclass(frozen=True)
class Shortage:
    product_id: int
    requested: int
    available: int


def _lock_stock(product_ids: Iterable[int]) -> dict[int, Stock]:
    """Lock the stock rows of these products, always in product order (no deadlocks)."""
    rows = Stock.objects.select_for_update(of=("self",)).filter(product_id__in=set(product_ids)).order_by("product_id")
    return {row.product_id: row for row in rows}


# Built by the ORM once per process (framework.compiled_query): the accepting request's
# stock take was 580 of its 4,240 Python calls, most of them building this one statement.
_TAKE_UNITS = CompiledUpdate(
    lambda product_id, quantity: (
        Stock.objects.filter(product_id=product_id, on_hand__gte=F("reserved") + quantity),
        {"reserved": F("reserved") + quantity},
    ),
    product_id=Mark(-7_315_919),
    quantity=Mark(-7_315_923),
)


# Every other change of a stock row's counts, built once too: a sale's deduction moves each
# of its lines (three to five hundred Python calls a line through the ORM's update()).
_MOVE_UNITS = CompiledUpdate(
    lambda product_id, reserved, on_hand: (
        Stock.objects.filter(product_id=product_id),
        {"reserved": F("reserved") + reserved, "on_hand": F("on_hand") + on_hand},
    ),
    product_id=Mark(-7_315_929),
    reserved=Mark(-7_315_931),
    on_hand=Mark(-7_315_937),
)


def _take_units(line: StockLine) -> bool:
    """Reserve one line's units if its product has them for sale: one conditional update,
    so the check and the take are one statement under the row's lock."""
    return _TAKE_UNITS.run(product_id=line.product_id, quantity=line.quantity) > 0


def reserve_stock(lines: Sequence[StockLine]) -> list[Shortage]:
    """Reserve every one of an order's lines, or nothing: returns all short lines at once.

    Each line takes its units with one conditional update, which also locks its row, in
    product order like every stock change. When a line is short, the lines already taken
    are given back before returning. Must run inside the caller's transaction, which also
    records the order's new state.
    """
    taken: list[StockLine] = []
    short: list[StockLine] = []
    for line in sorted(lines, key=lambda line: line.product_id):
        (taken if _take_units(line) else short).append(line)
    if not short:
        _announce_low_stock({line.product_id: line.quantity for line in taken})
        return []
    for line in taken:
        _MOVE_UNITS.run(product_id=line.product_id, reserved=-line.quantity, on_hand=0)
    return shortages(line for line in lines if line in short)


def take_stock(lines: Sequence[StockLine]) -> bool:
    """Reserve every one of an order's lines, or say False at the first short one.

    For a caller that writes everything else of the order first, so that these updates are
    its transaction's last statements: each stock row is locked from its update to the
    commit only, and buyers of one hot product queue for microseconds, not for the order's
    other writes. Taking nothing back on False: the caller rolls its transaction back.
    """
    for line in sorted(lines, key=lambda line: line.product_id):
        # One conditional update: the check and the take are one statement under the row's
        # lock, so two buyers of the last unit can never both pass (the CHECK constraints
        # stand behind it).
        if not _take_units(line):
            return False
    # Only where a partner listens for stock.low: one read after the takes, still in the
    # caller's transaction so the fact is written, or rolled back, with the sale.
    _announce_low_stock({line.product_id: line.quantity for line in lines})
    return True


def shortages(lines: Iterable[StockLine]) -> list[Shortage]:
    """These lines with the units available for each, as a shopper is told they are short."""
    lines = list(lines)
    available = dict(
        Stock.objects.filter(product_id__in=[line.product_id for line in lines]).values_list(
            "product_id", F("on_hand") - F("reserved")
        )
    )
    return [Shortage(line.product_id, line.quantity, available.get(line.product_id, 0)) for line in lines]


class StockMove(Enum):
    """What happens to a reservation after it was made: (reserved, on hand, ledger reason) per unit."""

    RELEASE = (-1, 0, None)  # the order ended before its stock was deducted
    DEDUCT = (-1, -1, StockMovement.Reason.SALE)  # the reservation becomes a sale
    RETURN = (0, 1, StockMovement.Reason.RETURN)  # a deducted order's sale was undone


def move_stock(move: StockMove, lines: Sequence[StockLine], *, order_id: int) -> None:
    """Apply `move` to the order's lines, with ledger lines where on-hand units change.

    Each line is one atomic update, which takes its row's lock itself, in product order like
    every stock change (no deadlocks); a locking read before them would only repeat that.
    """
    reserved_sign, on_hand_sign, reason = move.value
    if reason is not None:
        # The ledger lines first, the stock rows last: a hot product's row is locked from its
        # update to the caller's commit, not across this insert too.
        StockMovement.objects.bulk_create(
            StockMovement(
                product_id=line.product_id, quantity=on_hand_sign * line.quantity, reason=reason, order_id=order_id
            )
            for line in lines
        )
    for line in sorted(lines, key=lambda line: line.product_id):
        updated = _MOVE_UNITS.run(
            product_id=line.product_id,
            reserved=reserved_sign * line.quantity,
            on_hand=on_hand_sign * line.quantity,
        )
        if not updated:
            raise Stock.DoesNotExist(f"no stock row for product {line.product_id}")


def is_stock_deducted(order_id: int) -> bool:
    """Whether the order's sale lines are in the ledger and not all returned yet.

    Counted, not merely looked for: a redriven order may be sold, returned and sold again.
    """
    return bool(_STOCK_DEDUCTED.rows(order_id=order_id))


def orders_with_stock_deducted() -> "QuerySet[StockMovement, dict[str, Any]]":
    """The ids of every order whose stock is deducted now (as `is_stock_deducted`), as a subquery."""
    return (
        _sales_and_returns()
        .order_by()
        .values("order_id")
        .annotate(net=Sum("quantity"))
        .filter(net__lt=0)
        .values("order_id")
    )


def _sales_and_returns() -> QuerySet[StockMovement]:
    return StockMovement.objects.filter(reason__in=[StockMovement.Reason.SALE, StockMovement.Reason.RETURN])


# Read at every deduction, built once per process: the order among `orders_with_stock_deducted`.
_STOCK_DEDUCTED = CompiledQuery(
    lambda order_id: orders_with_stock_deducted().filter(order_id=order_id),
    order_id=Mark(-7_315_941),
)


class StockAdjustmentError(ValueError):
    """An adjustment that would take stock below zero or below what orders have reserved."""


@transaction.atomic
def adjust_stock(
    *,
    product: Product,
    delta: int,
    reason: str = StockMovement.Reason.ADJUSTMENT,
    user: User | None = None,
    note: str = "",
    submission_key: UUID | None = None,
) -> Stock:
    """Add (or, negative, remove) on-hand units of a product as a ledger line.

    The check runs against the locked row, so two staff members adjusting at once both
    count; an adjustment below the reserved units is refused. A `submission_key` already
    in the ledger means this very form was applied before (a double click): nothing changes.
    """
    stock, _ = Stock.objects.get_or_create(product=product)
    stock = _lock_stock([product.pk])[product.pk]
    # Under the row lock: a second submission of the same form waits here, then finds the first.
    if delta == 0 or (submission_key and StockMovement.objects.filter(submission_key=submission_key).exists()):
        return stock
    if stock.on_hand + delta < stock.reserved:
        raise StockAdjustmentError(
            f"{product.sku}: cannot remove {-delta} units; "
            f"{stock.on_hand} on hand, {stock.reserved} reserved by orders."
        )
    Stock.objects.filter(pk=stock.pk).update(on_hand=F("on_hand") + delta)
    line = StockMovement.objects.create(
        product=product, quantity=delta, reason=reason, user=user, note=note[:200], submission_key=submission_key
    )
    before = stock.on_hand
    stock.refresh_from_db()
    if user is not None:
        record_staff_activity(
            actor=user,
            what=f"{StockMovement.Reason(reason).label.lower()} stock",
            target=product,
            before={"on_hand": before},
            after={"on_hand": stock.on_hand},
            note=note[:200],
            ledger_line=line.pk,
        )
    if delta < 0:
        _announce_low_stock({product.pk: -delta})
    return stock


def _announce_low_stock(taken: dict[int, int]) -> None:
    """Announce `stock.low` for each product these units just took to or under its threshold
    (only the change that crosses it: one fact per fall, not one per sale below it)."""
    if not taken or not facts.is_wanted("stock.low"):
        return
    rows = Stock.objects.filter(product_id__in=taken, product__active=True).values_list(
        "product_id", "product__sku", "on_hand", "reserved", "product__low_stock_threshold"
    )
    for product_id, sku, on_hand, reserved, threshold in rows:
        available = on_hand - reserved
        if available <= threshold < available + taken[product_id]:
            data = {"sku": sku, "available": available, "on_hand": on_hand, "low_stock_threshold": threshold}
            facts.announce("stock.low", key=f"stock:{sku}", describe=functools.partial(dict, data))


@transaction.atomic
def set_stock_level(
    *,
    product: Product,
    on_hand: int,
    reason: str = StockMovement.Reason.IMPORT,
    user: User | None = None,
    note: str = "",
    submission_key: UUID | None = None,
) -> Stock:
    """Bring on-hand units to a counted number, through an adjustment of the difference."""
    Stock.objects.get_or_create(product=product)
    stock = _lock_stock([product.pk])[product.pk]
    return adjust_stock(
        product=product,
        delta=on_hand - stock.on_hand,
        reason=reason,
        user=user,
        note=note,
        submission_key=submission_key,
    )
