"""The manager's home page: what needs a look now, each tile a link to the filtered list."""

from dataclasses import dataclass

from django import template
from django.urls import reverse
from django_q.models import Failure

from inventory.selectors import products_low_on_stock
from orders import selectors
from payments.models import StripeEvent

register = template.Library()


@dataclass(frozen=True)
class Tile:
    """A count and what it counts, in the singular for one ("1 low-stock product")."""

    singular: str
    plural: str
    count: int
    url: str

    @property
    def label(self) -> str:
        return self.singular if self.count == 1 else self.plural

    @property
    def alarming(self) -> bool:
        return self.count > 0


@register.simple_tag
def manager_tiles(user) -> list[Tile]:
    """The home page's tiles this user may follow: orders for order staff, stock for stock staff."""
    tiles = []
    if user.has_perm("orders.view_order"):
        orders = reverse("admin:orders_order_changelist")
        counts = selectors.attention_counts()
        tiles += [
            Tile("Order needing attention", "Orders needing attention", counts["needs"], f"{orders}?attention=needs"),
            Tile(
                "Order over its time limit",
                "Orders over their time limit",
                counts["overdue"],
                f"{orders}?attention=overdue",
            ),
            Tile(
                "Authorisation close to expiring",
                "Authorisations close to expiring",
                counts["authorization_expiring"],
                f"{orders}?attention=authorization_expiring",
            ),
            Tile("Order retrying now", "Orders retrying now", counts["retrying"], f"{orders}?attention=retrying"),
        ]
    if user.has_perm("payments.view_stripeevent"):
        events = reverse("admin:payments_stripeevent_changelist")
        failed = StripeEvent.objects.exclude(error="").count()
        tiles.append(Tile("Failed webhook event", "Failed webhook events", failed, f"{events}?error__gt="))
    if user.has_perm("django_q.view_failure"):
        tiles.append(
            Tile("Failed task", "Failed tasks", Failure.objects.count(), reverse("admin:django_q_failure_changelist"))
        )
    if user.has_perm("inventory.view_product"):
        products = reverse("admin:inventory_product_changelist")
        tiles.append(
            Tile(
                "Low-stock product", "Low-stock products", products_low_on_stock().count(), f"{products}?low_stock=yes"
            )
        )
    return tiles
