"""Reads of the partner API: keys by their token, orders and stock as partners see them."""

import hmac
from datetime import datetime

from django.db.models import Prefetch, QuerySet

from inventory.models import Product
from orders.models import Order
from partners.models import PartnerKey, PartnerStockAdjustment
from partners.tokens import hash_secret, split_token
from payments.models import Refund


def key_for_token(token: str) -> PartnerKey | None:
    """The key this token (`pk_<prefix>.<secret>`) is, revoked or not; None when it is no key."""
    parts = split_token(token)
    if parts is None:
        return None
    prefix, secret = parts
    key = PartnerKey.objects.filter(prefix=prefix).first()
    # Compared in constant time, so the answer's timing tells nothing about the hash.
    if key is None or not hmac.compare_digest(key.secret_hash, hash_secret(secret)):
        return None
    return key


def adjustment_with_idempotency_key(key: PartnerKey, idempotency_key: str) -> PartnerStockAdjustment | None:
    """The adjustment this key first made with this Idempotency-Key, if any."""
    return PartnerStockAdjustment.objects.filter(key=key, idempotency_key=idempotency_key).first()


def orders_for_partner(*, state: str | None = None, updated_since: datetime | None = None) -> QuerySet[Order]:
    """Orders as partners list them, with what each row shows, filtered by state and by the
    time of their last change (inclusive)."""
    orders = Order.objects.select_related("payment", "receipt").prefetch_related(
        "lines",
        # Money that went back, as the shopper's view shows it: not a refund still being asked for.
        Prefetch(
            "refunds",
            queryset=Refund.objects.filter(status=Refund.Status.SUCCEEDED).order_by("id"),
            to_attr="refunds_made",
        ),
    )
    if state:
        orders = orders.filter(state=state)
    if updated_since is not None:
        orders = orders.filter(updated_at__gte=updated_since)
    return orders


def order_for_partner(reference: str) -> Order | None:
    """One order with its lines, payment and receipt."""
    return orders_for_partner().filter(reference=reference).first()


def stock_levels() -> QuerySet[Product]:
    """Every product with its stock row."""
    return Product.objects.select_related("stock")
