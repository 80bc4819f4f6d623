"""What the shop page asks of the API: its configuration, cheap polls, early refusals, its own order page."""

from decimal import Decimal

import pytest

from orders.models import Order
from orders.notifications import build_order_email
from tests.support.ordering import place

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_order_api_answers_304_to_a_poll_whose_etag_still_matches(api, shopper, make_product):
    make_product("MUG-001")
    order = shopper.buys({"MUG-001": 1})

    first = api.get(f"/api/orders/{order.reference}/")
    etag = first.headers["ETag"]
    again = api.get(f"/api/orders/{order.reference}/", HTTP_IF_NONE_MATCH=etag)

    assert first.status_code == 200 and first.json()["state"] == "COMPLETED"
    assert etag.startswith('W/"')
    assert again.status_code == 304
    assert again.content == b""


def test_the_etag_changes_when_the_order_moves_on(api, make_product, held_pipeline):
    make_product("MUG-001")
    response = place(api)
    order = Order.objects.get(reference=response.json()["reference"])
    validated = api.get(f"/api/orders/{order.reference}/")

    held_pipeline.run_by_hand(order, "process_payment")
    after_payment = api.get(f"/api/orders/{order.reference}/", HTTP_IF_NONE_MATCH=validated.headers["ETag"])

    assert validated.json()["state"] == "VALIDATED"
    assert after_payment.status_code == 200
    assert after_payment.json()["state"] == "PAID"
    assert after_payment.headers["ETag"] != validated.headers["ETag"]


def test_an_unknown_order_is_still_a_404_with_an_etag_in_hand(api):
    response = api.get("/api/orders/ord_nobody/", HTTP_IF_NONE_MATCH='W/"anything"')

    assert response.status_code == 404


def test_a_misspelled_simulated_payment_method_is_refused_at_placement_naming_the_field(api, make_product):
    make_product("MUG-001")

    response = place(api, pay_with="pm_card_visaa")

    assert response.status_code == 400
    assert "pm_card_visaa" in response.json()["payment_method"][0]
    assert not Order.objects.exists()


def test_stripe_accepts_any_payment_method_id_of_the_right_form_and_refuses_others(api, make_product, fake_stripe):
    make_product("MUG-001")

    refused = place(api, pay_with="card_4242")
    accepted = place(api, pay_with="pm_card_visa")

    assert refused.status_code == 400
    assert "pm_" in refused.json()["payment_method"][0]
    assert accepted.status_code == 202
    assert Order.objects.count() == 1


def test_the_shop_config_offers_the_simulated_test_methods_in_test_mode(api, settings):
    settings.SHOP_TAX_RATE = Decimal("0.2")

    config = api.get("/api/shop-config").json()

    assert config["test_mode"] is True
    assert config["stripe_publishable_key"] == ""
    assert config["tax_rate"] == "0.2000"
    ids = [method["id"] for method in config["test_payment_methods"]]
    assert ids[0] == "pm_card_visa" and "pm_card_chargeDeclined" in ids
    assert all(method["label"] for method in config["test_payment_methods"])


def test_with_a_publishable_key_the_page_collects_cards_itself(api, settings, fake_stripe):
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_shop"

    config = api.get("/api/shop-config").json()

    assert config["stripe_publishable_key"] == "pk_test_shop"
    assert config["test_mode"] is True
    assert config["test_payment_methods"] == []


def test_the_emails_follow_your_order_link_opens_the_shops_order_page(api, shopper, make_product, settings):
    settings.PUBLIC_BASE_URL = "https://shop.example"
    make_product("MUG-001")
    order = shopper.buys({"MUG-001": 1})

    body = build_order_email(order, "confirmation").body
    page = api.get(f"/orders/{order.reference}")

    assert f"https://shop.example/orders/{order.reference}\n" in body
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    assert b'<div id="root">' in page.content


def test_products_with_a_few_units_left_are_marked_low_on_stock(api, make_product):
    make_product("MUG-001", on_hand=5)  # the default threshold: 5 available units
    make_product("TEE-001", on_hand=6)
    make_product("CAP-001", on_hand=0)

    low = {product["sku"]: product["low_stock"] for product in api.get("/api/products/").json()}

    assert low == {"CAP-001": False, "MUG-001": True, "TEE-001": False}
