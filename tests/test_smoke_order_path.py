from decimal import Decimal

from django.core import mail

from orders.models import Order


def test_a_placed_order_for_stock_on_hand_completes_with_a_receipt_and_one_email(api, make_product):
    make_product("MUG-001", price="12.50", on_hand=5)

    response = api.post(
        "/api/orders/",
        {
            "email": "shopper@example.com",
            "lines": [{"sku": "MUG-001", "quantity": 2}],
            "payment_method": "pm_card_visa",
        },
        format="json",
    )

    assert response.status_code == 202, response.content
    order = Order.objects.get(reference=response.json()["reference"])
    assert order.state == "COMPLETED"
    assert order.total == Decimal("25.00")
    body = api.get(response.json()["status_url"]).json()
    assert body["state"] == "COMPLETED"
    assert body["receipt_url"]
    assert [e["to_state"] for e in body["history"] if e["to_state"]] == ["VALIDATED", "PAID", "CONFIRMED", "COMPLETED"]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["shopper@example.com"]
