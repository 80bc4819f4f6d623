"""Reading the managers' order pages in tests: an action's page, its form's one-use token,
the orders a list shows."""

import re


def action_page(order, name) -> str:
    """The confirmation page of the manager action `name` on `order`."""
    return f"/admin/orders/order/{order.pk}/action/{name}/"


def form_token(html: str) -> str:
    """The action form's one-use token (a double post acts once)."""
    return re.search(r'name="action_token" value="([^"]+)"', html).group(1)


def listed(response) -> set[str]:
    """The references of the orders a list page shows."""
    return set(re.findall(r"ord_[A-Za-z0-9_-]{22}", response.content.decode()))
