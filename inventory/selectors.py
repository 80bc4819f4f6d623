"""Reads of the catalog."""

from typing import TYPE_CHECKING, TypedDict

from django.db.models import BooleanField, Case, F, QuerySet, Value, When
from django.db.models.functions import Coalesce

from inventory.models import Product

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class Available(TypedDict):
    available: int


class StockFigures(TypedDict):
    units_on_hand: int
    units_reserved: int
    units_available: int
    is_low_on_stock: bool


class LowStockFigures(StockFigures, Available):
    pass


def products_for_sale() -> "QuerySet[WithAnnotations[Product, Available]]":
    """Active products with `available` (on hand minus reserved) annotated, in one query."""
    return (
        Product.objects.filter(active=True)
        .annotate(available=F("stock__on_hand") - F("stock__reserved"))
        .order_by("sku")
    )


def products_with_stock() -> "QuerySet[WithAnnotations[Product, StockFigures]]":
    """Every product with `units_on_hand`, `units_reserved`, `units_available` and `is_low_on_stock`
    annotated (zero for a product without a stock row), so lists sort and filter on them in SQL."""
    return Product.objects.annotate(
        units_on_hand=Coalesce(F("stock__on_hand"), 0),
        units_reserved=Coalesce(F("stock__reserved"), 0),
    ).annotate(
        units_available=F("units_on_hand") - F("units_reserved"),
        is_low_on_stock=Case(
            When(units_available__lte=F("low_stock_threshold"), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
    )


def products_low_on_stock() -> "QuerySet[WithAnnotations[Product, LowStockFigures]]":
    """Products for sale whose available units are at or below their low-stock threshold, with
    `available` annotated, fewest available first."""
    return (
        products_with_stock()
        .filter(active=True, is_low_on_stock=True)
        .annotate(available=F("units_available"))
        .order_by("units_available", "sku")
    )
