"""The stock catalog as tests see it: the import file's header and a snapshot of what an import
may change."""

from inventory.models import Product, Stock, StockMovement

HEADER = "sku,name,price,currency,on_hand\n"


def catalog_state() -> list[tuple]:
    """Everything an import may change, to prove a refused one changed nothing."""
    products = list(
        Product.objects.order_by("sku").values_list("sku", "name", "price", "currency", "low_stock_threshold", "active")
    )
    stock = list(Stock.objects.order_by("product__sku").values_list("product__sku", "on_hand", "reserved"))
    return [products, stock, StockMovement.objects.count()]
