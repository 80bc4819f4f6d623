"""The catalog with its stock, and the stock ledger for a period, as rows for a CSV file.

The product export's columns are the import's, so an exported file imports back unchanged.
"""

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

from django.utils import timezone

from inventory.models import StockMovement
from inventory.selectors import products_with_stock
from inventory.stock_import import COLUMNS, OPTIONAL_COLUMNS

PRODUCT_COLUMNS = COLUMNS + OPTIONAL_COLUMNS
LEDGER_COLUMNS = ["created_at", "sku", "quantity", "reason", "note", "order", "user"]


def product_rows() -> Iterator[list]:
    """The header, then every product with on hand, reserved, available, its threshold and whether it is on sale."""
    yield PRODUCT_COLUMNS
    products = products_with_stock().order_by("sku")
    for product in products.iterator(chunk_size=2000):
        yield [
            product.sku,
            product.name,
            product.price,
            product.currency,
            product.units_on_hand,
            product.units_reserved,
            product.units_available,
            product.low_stock_threshold,
            "true" if product.active else "false",
        ]


def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """From the start of `start` to the end of `end` (both days included), in the shop's time zone."""
    zone = timezone.get_current_timezone()
    return (
        datetime.combine(start, time.min, tzinfo=zone),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone),
    )


def _spreadsheet_safe(text: str) -> str:
    # Notes are typed by staff; a spreadsheet would run one starting like a formula.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


def ledger_rows(start: date, end: date) -> Iterator[list]:
    """The header, then every ledger line of the period, oldest first (a ledger reads forward)."""
    yield LEDGER_COLUMNS
    since, until = period_bounds(start, end)
    lines = (
        StockMovement.objects.filter(created_at__gte=since, created_at__lt=until)
        .order_by("created_at", "id")
        .values_list("created_at", "product__sku", "quantity", "reason", "note", "order__reference", "user__username")
    )
    zone = timezone.get_current_timezone()
    for created_at, sku, quantity, reason, note, order, user in lines.iterator(chunk_size=2000):
        yield [
            created_at.astimezone(zone).isoformat(timespec="seconds"),
            sku,
            quantity,
            reason,
            _spreadsheet_safe(note),
            order or "",
            user or "",
        ]
