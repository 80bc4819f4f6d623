"""Placing an order the way a shopper does: one body, sent in process or over HTTP."""

import requests

from orders.models import Order

DEFAULT_LINES = {"MUG-001": 1}


def order_body(
    quantities: dict[str, int] | None = None, *, pay_with: str = "pm_card_visa", email: str = "shopper@example.com"
) -> dict:
    """The JSON a shopper's page posts: an email, the lines (one MUG-001 by default), a payment method."""
    lines = DEFAULT_LINES if quantities is None else quantities
    return {
        "email": email,
        "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in lines.items()],
        "payment_method": pay_with,
    }


def place(
    client,
    quantities: dict[str, int] | None = None,
    *,
    pay_with: str = "pm_card_visa",
    email: str = "shopper@example.com",
    headers: dict[str, str] | None = None,
    address: str | None = None,
):
    """POST an order through a test client (DRF's APIClient) and return the answer as it is.

    `headers` are sent as HTTP headers by name ("X-Request-ID", "Idempotency-Key"); `address`
    is the client's own address (REMOTE_ADDR), as a shopper's connection would carry it."""
    extra = {"REMOTE_ADDR": address} if address else {}
    body = order_body(quantities, pay_with=pay_with, email=email)
    return client.post("/api/orders/", body, format="json", headers=headers, **extra)


def post_order(
    base_url: str,
    quantities: dict[str, int] | None = None,
    *,
    pay_with: str = "pm_card_visa",
    email: str = "shopper@example.com",
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> requests.Response:
    """POST an order over HTTP to a running shop at `base_url` and return the answer as it is."""
    body = order_body(quantities, pay_with=pay_with, email=email)
    return requests.post(f"{base_url}/api/orders/", json=body, headers=headers, timeout=timeout)


def placed(response) -> Order:
    """The order an accepted placement (202) made; any other answer fails the test, showing it."""
    assert response.status_code == 202, response.content
    return Order.objects.get(reference=response.json()["reference"])
