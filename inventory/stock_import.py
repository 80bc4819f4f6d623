"""Bulk loading of the catalog and stock counts from a CSV file."""

import csv
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.db import transaction

from inventory.models import Product, Stock, StockMovement
from inventory.services import set_stock_level

COLUMNS = ["sku", "name", "price", "currency", "on_hand"]


class StockImportError(ValueError):
    """A bad file or row; nothing was changed."""


@dataclass(frozen=True)
class StockRow:
    line: int
    sku: str
    name: str
    price: Decimal
    currency: str
    on_hand: int


def _parse_row(line: int, row: dict) -> StockRow:
    def fail(message: str):
        raise StockImportError(f"row {line}: {message}")

    sku, name, currency = ((row.get(k) or "").strip() for k in ("sku", "name", "currency"))
    if not sku or len(sku) > 64:
        fail("sku is required (at most 64 characters)")
    if not name:
        fail(f"{sku}: name is required")
    try:
        price = Decimal((row.get("price") or "").strip())
    except InvalidOperation:
        fail(f"{sku}: price {row.get('price')!r} is not a number")
    if not price.is_finite() or price < 0 or price != price.quantize(Decimal("0.01")):
        fail(f"{sku}: price must be a non-negative amount with at most two decimals")
    if len(currency) != 3 or not currency.isalpha():
        fail(f"{sku}: currency must be a three-letter code")
    on_hand_text = (row.get("on_hand") or "").strip()
    if not on_hand_text.isdigit():
        fail(f"{sku}: on_hand {on_hand_text!r} must be a whole number of zero or more")
    return StockRow(line, sku, name, price, currency.upper(), int(on_hand_text))


def read_stock_file(path: Path) -> list[StockRow]:
    """Parse and check every row before anything is written."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or [f.strip() for f in reader.fieldnames] != COLUMNS:
            raise StockImportError(f"header must be {','.join(COLUMNS)}, got {reader.fieldnames}")
        rows = [_parse_row(number, row) for number, row in enumerate(reader, start=2)]
    seen: dict[str, int] = {}
    for row in rows:
        if row.sku in seen:
            raise StockImportError(f"row {row.line}: {row.sku} already given on row {seen[row.sku]}")
        seen[row.sku] = row.line
    return rows


@transaction.atomic
def import_stock(path: Path, *, user=None) -> tuple[int, int]:
    """Create or update the products of the file and bring on hand to its counts, all or nothing.

    Returns (products created, products updated).
    """
    rows = read_stock_file(path)
    created = updated = 0
    for row in rows:
        product, was_created = Product.objects.update_or_create(
            sku=row.sku, defaults={"name": row.name, "price": row.price, "currency": row.currency}
        )
        created += was_created
        updated += not was_created
        Stock.objects.get_or_create(product=product)
        stock = Stock.objects.get(product=product)
        if row.on_hand < stock.reserved:
            raise StockImportError(
                f"row {row.line}: {row.sku} on_hand {row.on_hand} is below "
                f"the {stock.reserved} units reserved by orders"
            )
        set_stock_level(
            product=product,
            on_hand=row.on_hand,
            reason=StockMovement.Reason.IMPORT,
            user=user,
            note=f"import {path.name}",
        )
    return created, updated
