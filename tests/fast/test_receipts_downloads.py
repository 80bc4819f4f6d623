"""Receipt downloads on local storage: the shopper's signed link and the managers' admin link."""

import base64

from django.test import Client

from orders.models import Order
from receipts.services import receipt_storage
from tests.support.downloads import download
from tests.support.waiting import wait_until


def order_of_two_mugs(make_product, shopper, *, on_hand=5) -> Order:
    make_product("MUG-001", on_hand=on_hand)
    return shopper.buys({"MUG-001": 2})


def stored_bytes(order: Order) -> bytes:
    with receipt_storage().open(order.receipt.storage_key, "rb") as stored:
        return stored.read()


def test_the_shoppers_receipt_link_downloads_the_stored_pdf(api, shopper, make_product):
    order = order_of_two_mugs(make_product, shopper)

    receipt_url = api.get(f"/api/orders/{order.reference}/").json()["receipt_url"]
    response, body = download(api, receipt_url)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Cache-Control"] == "private, no-store"
    assert f'filename="receipt-{order.reference}.pdf"' in response["Content-Disposition"]
    assert body == stored_bytes(order)


def test_the_stable_receipt_address_in_emails_redirects_to_a_working_signed_link(api, shopper, make_product):
    order = order_of_two_mugs(make_product, shopper)

    redirect = api.get(f"/api/orders/{order.reference}/receipt")

    assert redirect.status_code == 302
    response, body = download(api, redirect["Location"])
    assert response.status_code == 200
    assert body == stored_bytes(order)


def test_an_expired_receipt_link_is_refused(api, shopper, make_product, settings):
    settings.RECEIPT_LINK_TTL_SECONDS = 1
    order = order_of_two_mugs(make_product, shopper)
    link = api.get(f"/api/orders/{order.reference}/").json()["receipt_url"]

    wait_until(
        lambda: download(api, link)[0].status_code == 403,
        timeout=settings.RECEIPT_LINK_TTL_SECONDS + 10,
        message="the receipt link still works past its lifetime",
    )

    response = api.get(link)
    assert response.status_code == 403
    assert b"expired" in response.content


def test_a_tampered_receipt_link_is_refused(api, shopper, make_product):
    order = order_of_two_mugs(make_product, shopper)
    link = api.get(f"/api/orders/{order.reference}/").json()["receipt_url"]
    flipped = "A" if link[-1] != "A" else "B"

    assert api.get(link[:-1] + flipped).status_code == 403
    assert api.get(link.replace("/receipts/", "/receipts/x")).status_code == 403


def test_no_receipt_is_handed_out_for_an_unknown_order(api, shopper, make_product):
    order_of_two_mugs(make_product, shopper)

    assert api.get("/api/orders/ord_not-a-real-reference/receipt").status_code == 404


def test_a_manager_downloads_a_receipt_from_the_order_admin_through_a_fresh_link(shopper, make_product, manager):
    order = order_of_two_mugs(make_product, shopper)

    page = manager.get(f"/admin/orders/order/{order.pk}/change/")
    assert page.status_code == 200
    admin_link = f"/admin/orders/order/{order.pk}/receipt/"
    assert f'href="{admin_link}"' in page.content.decode()
    redirect = manager.get(admin_link)
    assert redirect.status_code == 302
    response, body = download(manager, redirect["Location"])
    assert response.status_code == 200
    assert body == stored_bytes(order)


def test_the_admin_receipt_link_needs_a_signed_in_manager(shopper, make_product):
    order = order_of_two_mugs(make_product, shopper)

    response = Client().get(f"/admin/orders/order/{order.pk}/receipt/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_an_order_without_a_receipt_offers_no_download(shopper, make_product, manager):
    order = order_of_two_mugs(make_product, shopper, on_hand=1)  # out of stock: REJECTED, no receipt

    page = manager.get(f"/admin/orders/order/{order.pk}/change/")

    assert order.state == "REJECTED"
    assert "/receipt/" not in page.content.decode()
    assert manager.get(f"/admin/orders/order/{order.pk}/receipt/").status_code == 404


def test_the_receipt_link_reveals_nothing_of_the_order(api, shopper, make_product):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1})
    link = api.get(f"/api/orders/{order.reference}/").json()["receipt_url"]
    token = link.rsplit("/receipts/", 1)[1]

    link_id, _signed_at, _signature = token.split(":")
    decoded = b"".join(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in token.split(":"))
    secrets_of_the_order = [order.reference, order.receipt.number, order.receipt.storage_key, order.email]
    assert link_id == order.receipt.link_id  # 128 random bits
    assert not [s for s in secrets_of_the_order if s in token or s.encode() in decoded]
    assert download(api, link)[0].status_code == 200
