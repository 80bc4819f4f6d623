"""Bulk loading of the catalog and stock counts from a CSV file."""

import csv
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.db import transaction

from inventory.models import Product, StockMovement
from inventory.services import StockAdjustmentError, set_stock_level

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

    if None in row:  # csv.DictReader files values beyond the header under None
        fail(f"{len(COLUMNS) + len(row[None])} values, expected {len(COLUMNS)} ({','.join(COLUMNS)})")
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
        try:
            if reader.fieldnames is None or [f.strip() for f in reader.fieldnames] != COLUMNS:
                raise StockImportError(f"header must be {','.join(COLUMNS)}, got {reader.fieldnames}")
            rows = [_parse_row(number, row) for number, row in enumerate(reader, start=2)]
        except UnicodeDecodeError as error:
            raise StockImportError(f"the file is not UTF-8 text ({error})") from error
        except csv.Error as error:
            raise StockImportError(f"row {reader.line_num}: {error}") from error
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
        try:
            # Checked against the locked stock row, so an order reserving meanwhile is counted.
            set_stock_level(
                product=product,
                on_hand=row.on_hand,
                reason=StockMovement.Reason.IMPORT,
                user=user,
                note=f"import {path.name}",
            )
        except StockAdjustmentError as error:
            raise StockImportError(f"row {row.line}: on_hand {row.on_hand} is refused: {error}") from error
    return created, updated
