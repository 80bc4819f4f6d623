"""Bulk loading of the catalog and stock counts from a CSV file.

One parser and one comparison serve `manage.py import_stock`, the admin's import page and
its preview: a file is read and checked whole (every bad row named by its line), compared
with the catalog as it stands (what would change, row by row), then applied all or nothing.
"""

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.db import transaction

from inventory.catalog_rules import product_field_errors
from inventory.models import Product, Stock, StockMovement
from inventory.services import StockAdjustmentError, set_stock_level

COLUMNS = ["sku", "name", "price", "currency", "on_hand"]
# Columns a file may add after the required ones. An export writes all of them, so an
# exported file imports back; `reserved` and `available` are what orders hold, shown for
# reading and ignored on import.
OPTIONAL_COLUMNS = ["reserved", "available", "low_stock_threshold", "active"]
READ_ONLY_COLUMNS = {"reserved", "available"}
TRUE_WORDS, FALSE_WORDS = {"true", "yes", "1"}, {"false", "no", "0"}


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"row {self.line}: {self.message}"


class StockImportError(ValueError):
    """A bad file or bad rows (all of them, each with its line); nothing was changed."""

    def __init__(self, errors: list[RowError]):
        self.errors = errors
        super().__init__("; ".join(str(error) for error in errors))


@dataclass(frozen=True)
class StockRow:
    line: int
    sku: str
    name: str
    price: Decimal
    currency: str
    on_hand: int
    low_stock_threshold: int | None = None  # None: the column is absent or blank, keep what the product has
    active: bool | None = None


@dataclass(frozen=True)
class RowPreview:
    """What importing one row would do: create the product, change some of its fields, or nothing."""

    line: int
    sku: str
    created: bool
    changes: list[str] = field(default_factory=list)
    error: str = ""
    row: StockRow | None = None  # every value the import writes, shown in the preview whether it changes or not

    @property
    def unchanged(self) -> bool:
        return not (self.created or self.changes or self.error)


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int

    def __str__(self) -> str:
        products = "product" if self.created == 1 else "products"
        return f"{self.created} {products} created, {self.updated} updated, {self.unchanged} unchanged"


def _parse_row(line: int, row: dict, width: int) -> StockRow:
    def fail(message: str):
        raise StockImportError([RowError(line, message)])

    if None in row:  # csv.DictReader files values beyond the header under None
        fail(f"{width + len(row[None])} values, expected {width}")
    if any(value is None for value in row.values()):
        fail(f"{sum(value is not None for value in row.values())} values, expected {width}")
    sku, name, currency = ((row.get(k) or "").strip() for k in ("sku", "name", "currency"))
    label = f"{sku}: " if sku else ""
    if not name:
        fail(f"{label}name is required")
    try:
        price = Decimal((row.get("price") or "").strip())
    except InvalidOperation:
        fail(f"{label}price {row.get('price')!r} is not a number")
    currency = currency.upper()
    if errors := product_field_errors(sku=sku, currency=currency, price=price):
        fail(label + " ".join(message for messages in errors.values() for message in messages))
    on_hand_text = (row.get("on_hand") or "").strip()
    if not on_hand_text.isdigit():
        fail(f"{sku}: on_hand {on_hand_text!r} must be a whole number of zero or more")
    threshold_text = (row.get("low_stock_threshold") or "").strip()
    if threshold_text and not threshold_text.isdigit():
        fail(f"{sku}: low_stock_threshold {threshold_text!r} must be a whole number of zero or more")
    active_text = (row.get("active") or "").strip().lower()
    if active_text and active_text not in TRUE_WORDS | FALSE_WORDS:
        fail(f"{sku}: active {active_text!r} must be true or false")
    return StockRow(
        line,
        sku,
        name,
        price,
        currency,
        int(on_hand_text),
        low_stock_threshold=int(threshold_text) if threshold_text else None,
        active=(active_text in TRUE_WORDS) if active_text else None,
    )


def _checked_header(fieldnames: Sequence[str] | None) -> list[str]:
    """The header's column names, stripped; a StockImportError unless they are the columns we read."""
    names = [name.strip() for name in fieldnames or []]
    extra = names[len(COLUMNS) :]
    if (
        names[: len(COLUMNS)] != COLUMNS
        or any(name not in OPTIONAL_COLUMNS for name in extra)
        or len(set(extra)) != len(extra)
    ):
        raise StockImportError(
            [
                RowError(
                    1,
                    f"header must be {','.join(COLUMNS)}, optionally followed by any of "
                    f"{','.join(OPTIONAL_COLUMNS)}; got {','.join(names) or 'nothing'}",
                )
            ]
        )
    return names


def parse_stock_csv(text: str) -> list[StockRow]:
    """Parse and check every row of a CSV text; raise one StockImportError naming every bad row."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        reader.fieldnames = header = _checked_header(reader.fieldnames)
        rows: list[StockRow] = []
        errors: list[RowError] = []
        for number, record in enumerate(reader, start=2):
            try:
                rows.append(_parse_row(number, record, len(header)))
            except StockImportError as error:
                errors.extend(error.errors)
    except csv.Error as error:
        raise StockImportError([RowError(reader.line_num, str(error))]) from error
    seen: dict[str, int] = {}
    for row in rows:
        if row.sku in seen:
            errors.append(RowError(row.line, f"{row.sku} already given on row {seen[row.sku]}"))
        seen.setdefault(row.sku, row.line)
    if errors:
        raise StockImportError(sorted(errors, key=lambda error: error.line))
    return rows


def decode_stock_csv(data: bytes) -> str:
    """The text of an uploaded or stored CSV file (UTF-8, with or without a byte-order mark)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise StockImportError([RowError(1, f"the file is not UTF-8 text ({error})")]) from error


def read_stock_file(path: Path) -> list[StockRow]:
    """Parse and check every row of a CSV file before anything is written."""
    return parse_stock_csv(decode_stock_csv(Path(path).read_bytes()))


def _product_changes(row: StockRow, product: Product) -> dict[str, tuple]:
    """The product fields the row would change: {field: (now, then)}."""
    wanted = {"name": row.name, "price": row.price, "currency": row.currency}
    if row.low_stock_threshold is not None:
        wanted["low_stock_threshold"] = row.low_stock_threshold
    if row.active is not None:
        wanted["active"] = row.active
    return {name: (getattr(product, name), value) for name, value in wanted.items() if getattr(product, name) != value}


def _describe(row: StockRow, product: Product | None, stock: Stock | None) -> RowPreview:
    if product is None:
        return RowPreview(row.line, row.sku, created=True, changes=[f"new product, {row.on_hand} on hand"], row=row)
    changes = [f"{name}: {now} → {then}" for name, (now, then) in _product_changes(row, product).items()]
    on_hand, reserved = (stock.on_hand, stock.reserved) if stock else (0, 0)
    if row.on_hand != on_hand:
        changes.append(f"on hand: {on_hand} → {row.on_hand} ({row.on_hand - on_hand:+d})")
    error = ""
    if row.on_hand < reserved:
        error = f"on_hand {row.on_hand} is below the {reserved} units reserved by orders"
    return RowPreview(row.line, row.sku, created=False, changes=changes, error=error, row=row)


def preview_stock_import(rows: list[StockRow]) -> list[RowPreview]:
    """What importing these rows would change, row by row, read from the catalog as it is; writes nothing.

    `import_stock` checks again under the stock row locks, so an order reserving meanwhile is counted.
    """
    products = Product.objects.select_related("stock").in_bulk([row.sku for row in rows], field_name="sku")
    previews = []
    for row in rows:
        product = products.get(row.sku)
        previews.append(_describe(row, product, getattr(product, "stock", None) if product else None))
    return previews


@transaction.atomic
def apply_stock_import(rows: list[StockRow], *, user=None, source: str = "") -> ImportResult:
    """Create or update the rows' products and bring on hand to their counts, all or nothing."""
    created = updated = unchanged = 0
    for row in rows:
        existing = Product.objects.filter(sku=row.sku).first()
        is_new = existing is None
        product = existing or Product.objects.create(sku=row.sku, name=row.name, price=row.price, currency=row.currency)
        changes = _product_changes(row, product)  # for a new product, the optional columns
        for name, (_, value) in changes.items():
            setattr(product, name, value)
        if changes:
            product.save(update_fields=list(changes))
        on_hand_before = Stock.objects.filter(product=product).values_list("on_hand", flat=True).first() or 0
        try:
            # Checked against the locked stock row, so an order reserving meanwhile is counted.
            stock = set_stock_level(
                product=product,
                on_hand=row.on_hand,
                reason=StockMovement.Reason.IMPORT,
                user=user,
                note=f"import {source}".strip(),
            )
        except StockAdjustmentError as error:
            raise StockImportError([RowError(row.line, f"on_hand {row.on_hand} is refused: {error}")]) from error
        if is_new:
            created += 1
        elif changes or stock.on_hand != on_hand_before:
            updated += 1
        else:
            unchanged += 1
    return ImportResult(created, updated, unchanged)


def import_stock(path: Path, *, user=None) -> ImportResult:
    """Import a CSV file from disk (what `manage.py import_stock` runs)."""
    return apply_stock_import(read_stock_file(path), user=user, source=Path(path).name)
