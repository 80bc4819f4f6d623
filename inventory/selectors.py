"""Reads of the catalog."""

from django.db.models import F, QuerySet

from inventory.models import Product


def products_for_sale() -> QuerySet[Product]:
    """Active products with `available` (on hand minus reserved) annotated, in one query."""
    return (
        Product.objects.filter(active=True)
        .annotate(available=F("stock__on_hand") - F("stock__reserved"))
        .order_by("sku")
    )


def products_low_on_stock() -> QuerySet[Product]:
    """Active products whose available units are at or below their low-stock threshold,
    with `available` annotated, fewest available first."""
    return (
        products_for_sale()
        .filter(available__lte=F("low_stock_threshold"))
        .order_by("available", "sku")
    )
