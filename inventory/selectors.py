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
