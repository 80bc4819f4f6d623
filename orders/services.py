"""Order placement: the Lambda OrderPlacement of the original design.

Validates what the shopper asked for against the catalog, writes the order with its lines
(prices captured now) and reserves their stock in the same transaction, the pipeline's
first step (PENDING -> VALIDATED or REJECTED), so the shopper learns at once whether the
stock is theirs; the next step is queued once the transaction commits. Replaying a
request with the same idempotency key returns the order it created and writes nothing.
"""

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypedDict

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet

from framework import log_context
from framework.compiled_query import CompiledQuery, Mark
from inventory.models import Product
from orders import history, pipeline
from orders.models import Order, OrderLine, lock_order
from orders.models import OrderState as S
from orders.reservations import (
    HoldsLapsedRecently,
    TooManyUnitsHeld,
    UnpaidShareExceeded,
    check_lapse_wait,
    check_units_held,
)
from orders.selectors import order_with_idempotency_key
from orders.steps import After, StockGoneMeanwhile, validate_taking_stock_last, write_and_reserve_or_reject
from orders.transitions import IllegalTransition, end_order
from payments.services import check_payment_method

CENT = Decimal("0.01")


class RequestedLine(TypedDict):
    """One line of an order as the shopper asked for it (the API's validated input)."""

    sku: str
    quantity: int


class IdempotencyConflict(Exception):
    """The idempotency key was used before for a different request."""


class InvalidOrderLines(ValidationError):
    """Lines the catalog cannot fill; `line_errors` holds each bad line's field errors under
    its position in the request, the shape the API gives errors of malformed lines."""

    def __init__(self, line_errors: dict[int, dict[str, list[str]]]):
        super().__init__({"lines": [m for errors in line_errors.values() for ms in errors.values() for m in ms]})
        self.line_errors = line_errors


@dataclass(frozen=True)
class Placement:
    order: Order
    created: bool


def request_hash(*, email: str, lines: list[RequestedLine], payment_method: str) -> str:
    """A fingerprint of what was asked, to tell a replay from a different request."""
    canonical = json.dumps(
        {
            "email": email.strip().lower(),
            "lines": [[line["sku"], line["quantity"]] for line in lines],
            "payment_method": payment_method,
        },
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _merge_lines(lines: list[RequestedLine]) -> dict[str, int]:
    """Quantities per SKU, the same SKU given twice counting once with both quantities."""
    merged: dict[str, int] = {}
    for line in lines:
        merged[line["sku"]] = merged.get(line["sku"], 0) + line["quantity"]
    return merged


def _products_with_skus(**skus: str) -> QuerySet[Product]:
    """The products of these SKUs with their units for sale (one join, one number: cheaper
    than the stock rows as models), from which the client's share of a product is counted
    (reservations.check_units_held)."""
    for_sale = F("stock__on_hand") - F("stock__reserved")
    return Product.objects.filter(sku__in=list(skus.values())).order_by().annotate(units_for_sale=for_sale)


# One query per number of SKUs asked, built by the ORM once per process
# (framework.compiled_query): building it on every order was 700 of the accepting request's
# Python calls. Orders have at most ORDER_MAX_LINES lines, so there are that many at most.
_PRODUCTS_BY_COUNT: dict[int, CompiledQuery] = {}


def _products_for(skus: list[str]) -> dict[str, Product]:
    """The catalog's products of `skus` (each once), by SKU, with their `units_for_sale`."""
    if not skus:
        return {}
    query = _PRODUCTS_BY_COUNT.get(len(skus))
    if query is None:
        marks = {f"sku{i}": Mark(f"\x1esku{i}\x1e") for i in range(len(skus))}
        query = _PRODUCTS_BY_COUNT[len(skus)] = CompiledQuery(_products_with_skus, **marks)
    return {p.sku: p for p in query.instances(**{f"sku{i}": sku for i, sku in enumerate(skus)})}


def _priced_lines(lines: list[RequestedLine]) -> tuple[list[OrderLine], str]:
    """Order lines priced from the catalog; every problem reported at once, per line."""
    quantities = _merge_lines(lines)
    products = _products_for(list(quantities))
    errors: dict[int, dict[str, list[str]]] = {}
    for index, line in enumerate(lines):
        product = products.get(line["sku"])
        if product is None:
            errors[index] = {"sku": [f"Unknown product {line['sku']!r}."]}
        elif not product.active:
            errors[index] = {"sku": [f"Product {line['sku']!r} is not for sale."]}
        elif quantities[line["sku"]] > settings.ORDER_MAX_QUANTITY:
            errors[index] = {"quantity": [f"At most {settings.ORDER_MAX_QUANTITY} units of one product."]}
    if errors:
        raise InvalidOrderLines(errors)
    if (units := sum(quantities.values())) > settings.ORDER_MAX_UNITS:
        raise ValidationError({"lines": [f"At most {settings.ORDER_MAX_UNITS} units in one order ({units} asked)."]})
    currencies = {products[sku].currency for sku in quantities}
    if len(currencies) > 1:
        raise ValidationError(
            {"lines": [f"Products are priced in different currencies: {', '.join(sorted(currencies))}."]}
        )
    order_lines = [
        OrderLine(
            product=products[sku],
            sku=sku,
            name=products[sku].name,
            quantity=quantity,
            unit_price=products[sku].price,
            line_total=products[sku].price * quantity,
        )
        for sku, quantity in quantities.items()
    ]
    return order_lines, currencies.pop()


def place_order(
    *,
    email: str,
    lines: list[RequestedLine],
    payment_method: str,
    idempotency_key: str | None = None,
    client_address: str | None = None,
    lapse_marks: Mapping[str, object] | None = None,
) -> Placement:
    """Write the order and validate it at once: its stock reserved (VALIDATED, the pipeline
    goes on from there) or refused (REJECTED, naming the short lines). A replayed key
    returns the first order and writes nothing.

    Raises `ValidationError` (per field) for a request the catalog cannot fill or a payment
    method the gateway can never charge, `IdempotencyConflict` when the key was used for a
    different request, `reservations.TooManyUnitsHeld` or `UnpaidShareExceeded` when the client
    (`client_address` or `email`) already holds its share of stock in unpaid orders, and
    `reservations.HoldsLapsedRecently` while it waits after its unpaid orders lapsed
    (`lapse_marks`: its marks, when the rate limits read them already).
    """
    started = time.monotonic()
    fingerprint = request_hash(email=email, lines=lines, payment_method=payment_method)
    try:
        order_lines, currency = _priced_lines(lines)
        if problem := check_payment_method(payment_method):
            # Refused now, while the shopper can still choose another, not as a failed order later.
            raise ValidationError({"payment_method": [problem]})
    except ValidationError:
        # A replay returns its order even when the catalog has changed since.
        if idempotency_key and (existing := order_with_idempotency_key(idempotency_key)):
            return _replay(existing, fingerprint)
        raise
    subtotal = sum((line.line_total for line in order_lines), Decimal("0"))
    tax = (subtotal * settings.SHOP_TAX_RATE).quantize(CENT, rounding=ROUND_HALF_UP)
    order_fields = {
        "email": email,
        "currency": currency,
        "subtotal": subtotal,
        "tax_rate": settings.SHOP_TAX_RATE,
        "tax": tax,
        "total": subtotal + tax,
        "payment_method": payment_method,
        "placed_from": client_address or None,
        "idempotency_key": idempotency_key or None,
        "request_hash": fingerprint,
    }
    try:
        try:
            order = _write_and_validate(order_fields, order_lines, started, lapse_marks, validate_taking_stock_last)
        except StockGoneMeanwhile:
            # The last units went between the lines' reads and the take: nothing of that
            # attempt was kept; this one reserves first and names every short line.
            order = _write_and_validate(order_fields, order_lines, started, lapse_marks, write_and_reserve_or_reject)
    except (IntegrityError, TooManyUnitsHeld, UnpaidShareExceeded, HoldsLapsedRecently):
        # The key's unique index finds a replay (or a racing twin) without a lookup on every
        # request; the insert fails before any stock is touched. A replay whose client is now
        # refused (the first order holds the units) is still answered with its order.
        existing = order_with_idempotency_key(idempotency_key) if idempotency_key else None
        if existing is None:
            raise
        return _replay(existing, fingerprint)
    return Placement(order=order, created=True)


def _write_and_validate(
    order_fields: dict[str, Any],
    order_lines: list[OrderLine],
    started: float,
    lapse_marks: Mapping[str, object] | None,
    validate: Callable[..., After],
) -> Order:
    """In one transaction: the client's unpaid units checked, then `validate` (the pipeline's
    first step) writes the order and its lines, its stock updates last."""
    with transaction.atomic():
        order = Order(**order_fields)
        for line in order_lines:
            line.pk = None  # written afresh when a first attempt was rolled back
        # Before the order is written, which then needs no second write once validated; a
        # replayed key that these refuse is answered by `place_order` all the same.
        check_lapse_wait(email=order.email, client_address=order.placed_from, read=lapse_marks)
        check_units_held(email=order.email, client_address=order.placed_from, lines=order_lines)
        run = history.StepRun(step="validate_order", attempt=1, started=started)
        log_context.bind(order=order.reference, step=run.step, attempt=run.attempt)
        if validate(order, order_lines, run) is After.NEXT_STEP:
            pipeline.enqueue_advance(order.pk)
    return order


def _replay(order: Order, fingerprint: str) -> Placement:
    if order.request_hash != fingerprint:
        raise IdempotencyConflict("This Idempotency-Key was already used for a different order request.")
    return Placement(order=order, created=False)


def cancel_order(order: Order, *, reason: str = "Cancelled by the shop.", cancelled_by: str = "") -> Order:
    """A manager cancels an order that is not final: stock back, payment voided or refunded.

    `reason` is shown to the shopper; `cancelled_by` goes into the history only.
    """
    with transaction.atomic():
        locked = lock_order(order.pk)
        if locked.is_final:
            raise IllegalTransition(f"{locked.reference} is {locked.state} and cannot be cancelled")
        run = history.start_run("cancel_order", locked, actor=history.manager(cancelled_by))
        end_order(locked, S.CANCELLED, run, code="cancelled", reason=reason)
    return locked
