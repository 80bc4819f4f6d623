"""Many orders written in two statements, for tests about what reads cost as a shop grows."""

from django.db import connection

from inventory.models import Product


def add_orders(product: Product, orders: int, *, clients: int, state: str = "VALIDATED") -> None:
    """`orders` orders in `state` of one unit of `product`, from `clients` emails and
    addresses in turn (10.0.0.0 + n), each with its line."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO orders_order (reference, email, state, currency, subtotal, tax_rate, tax, total,"
            " payment_method, request_hash, failure_code, failure_reason, needs_attention, created_at,"
            " updated_at, redrive_count, placed_from)"
            " SELECT 'ord_' || md5(random()::text), 'shopper' || n %% %s || '@example.com', %s, 'USD', 12.50, 0, 0,"
            " 12.50, 'pm_card_visa', md5(n::text), '', '', false, now(), now(), 0, '10.0.0.0'::inet + n %% %s"
            " FROM generate_series(1, %s) AS n",
            [clients, state, clients, orders],
        )
        cursor.execute(
            "INSERT INTO orders_orderline (order_id, product_id, sku, name, quantity, unit_price, line_total)"
            " SELECT o.id, %s, %s, 'Mug', 1, 12.50, 12.50 FROM orders_order o"
            " WHERE NOT EXISTS (SELECT 1 FROM orders_orderline l WHERE l.order_id = o.id)",
            [product.pk, product.sku],
        )
