"""GET /api/orders/<reference>/ and the receipt links: what a shopper follows after ordering."""

import io
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core import signing
from pypdf import PdfReader

from inventory.models import Product
from receipts.services import receipt_download_url
from tests.support.downloads import download


@pytest.fixture
def completed_order(shopper, make_product):
    make_product("MUG-001", price="12.50", on_hand=5)
    make_product("TEE-002", price="20.00", on_hand=5)
    return shopper.buys({"MUG-001": 2, "TEE-002": 1})


def test_a_completed_order_shows_its_state_lines_totals_payment_and_history(api, completed_order):
    response = api.get(f"/api/orders/{completed_order.reference}/")

    assert response.status_code == 200
    body = response.json()
    assert body["reference"] == completed_order.reference
    assert body["state"] == "COMPLETED"
    assert body["currency"] == "USD"
    assert body["lines"] == [
        {
            "sku": "MUG-001",
            "name": "Product MUG-001",
            "quantity": 2,
            "unit_price": "12.50",
            "line_total": "25.00",
            "units_left": None,
        },
        {
            "sku": "TEE-002",
            "name": "Product TEE-002",
            "quantity": 1,
            "unit_price": "20.00",
            "line_total": "20.00",
            "units_left": None,
        },
    ]
    assert (body["subtotal"], body["tax"], body["total"]) == ("45.00", "0.00", "45.00")
    assert body["payment_status"] == "captured"
    assert body["failure_reason"] == ""
    assert body["completed_at"]
    assert [(e["step"], e["outcome"], e["attempt"], e["to_state"]) for e in body["history"]] == [
        ("validate_order", "succeeded", 1, "VALIDATED"),
        ("process_payment", "succeeded", 1, "PAID"),
        ("update_inventory", "succeeded", 1, "CONFIRMED"),
        ("generate_receipt", "succeeded", 1, ""),
        ("send_notification", "succeeded", 1, "COMPLETED"),
    ]
    assert set(body["history"][0]) == {
        "step",
        "outcome",
        "attempt",
        "from_state",
        "to_state",
        "error",
        "duration_ms",
        "at",
    }
    assert body["receipt_url"].startswith("http://testserver/receipts/")


def test_an_order_keeps_the_price_it_was_placed_at_when_the_product_price_changes(api, completed_order):
    Product.objects.filter(sku="MUG-001").update(price=Decimal("99.99"))

    body = api.get(f"/api/orders/{completed_order.reference}/").json()

    assert body["lines"][0]["unit_price"] == "12.50"
    assert body["total"] == "45.00"
    assert api.get("/api/products/").json()[0]["price"] == "99.99"


def test_the_history_shows_every_attempt_of_a_retried_step(api, shopper, make_product):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1}, pay_with="pm_sim_transient_error")

    history = api.get(f"/api/orders/{order.reference}/").json()["history"]

    payment_attempts = [e for e in history if e["step"] == "process_payment"]
    assert [(e["attempt"], e["outcome"]) for e in payment_attempts] == [(1, "retrying"), (2, "succeeded")]
    assert "Simulated connection error" in payment_attempts[0]["error"]


def test_a_declined_order_shows_its_failure_reason_and_has_no_receipt(api, shopper, make_product):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1}, pay_with="pm_card_chargeDeclined")

    body = api.get(f"/api/orders/{order.reference}/").json()

    assert body["state"] == "PAYMENT_FAILED"
    assert body["failure_code"] == "generic_decline"
    assert body["failure_reason"] == "Your card was declined."
    assert body["payment_status"] == "declined"
    assert body["receipt_url"] is None
    assert api.get(f"/api/orders/{order.reference}/receipt").status_code == 404


def test_the_receipt_link_downloads_the_pdf_of_the_order(api, client, completed_order):
    receipt_url = api.get(f"/api/orders/{completed_order.reference}/").json()["receipt_url"]

    response, pdf = download(client, receipt_url)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert f"receipt-{completed_order.reference}.pdf" in response["Content-Disposition"]
    assert pdf.startswith(b"%PDF")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert completed_order.reference in text
    assert "MUG-001" in text


def test_the_stable_receipt_address_redirects_to_a_fresh_signed_link(client, completed_order):
    response = client.get(f"/api/orders/{completed_order.reference}/receipt")

    assert response.status_code == 302
    assert "/receipts/" in response["Location"]
    followed, pdf = download(client, response["Location"])
    assert followed.status_code == 200
    assert pdf.startswith(b"%PDF")


def test_a_tampered_receipt_link_is_refused(client, completed_order):
    link = client.get(f"/api/orders/{completed_order.reference}/receipt")["Location"]
    tampered = link[:-3] + ("xyz" if not link.endswith("xyz") else "abc")

    assert client.get(tampered).status_code == 403
    assert client.get("/receipts/not-a-signed-token").status_code == 403


def test_an_expired_receipt_link_is_refused(client, completed_order, settings, monkeypatch):
    real_time = signing.time.time
    with monkeypatch.context() as clock:
        # Sign the link as if it had been handed out longer ago than links live.
        signed_at = real_time() - settings.RECEIPT_LINK_TTL_SECONDS - 5
        clock.setattr(signing, "time", SimpleNamespace(time=lambda: signed_at))
        stale_link = receipt_download_url(completed_order.receipt, base_url="http://testserver")

    response = client.get(stale_link)

    assert response.status_code == 403
    assert b"expired" in response.content


def test_an_unknown_order_and_its_receipt_are_not_found(api, db):
    assert api.get("/api/orders/ord_AAAAAAAAAAAAAAAAAAAAAA/").status_code == 404
    response = api.get("/api/orders/ord_AAAAAAAAAAAAAAAAAAAAAA/receipt")

    assert response.status_code == 404
    assert response.json() == {"detail": "No order has this reference.", "reason": "order_not_found", "state": None}


def test_the_schema_answers_an_unknown_format_with_a_400_naming_the_formats_it_serves(client, db):
    unknown = client.get("/api/schema/?format=xml")
    unacceptable = client.get("/api/schema/", HTTP_ACCEPT="text/html")

    assert unknown.status_code == 400
    assert unknown.json() == {"format": ["Unknown format 'xml': the schema is served as json or yaml."]}
    assert unacceptable.status_code == 406 and "detail" in unacceptable.json()
    assert client.get("/api/schema/?format=json").json()["openapi"].startswith("3.")
    assert client.get("/api/schema/?format=yaml").content.startswith(b"openapi: 3.")


def test_the_api_is_described_by_an_openapi_schema_and_browsable_docs(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ("/api/orders/", "/api/place-order", "/api/orders/{reference}/", "/api/products/"):
        assert path in paths
    assert "Idempotency-Key" in {p["name"] for p in paths["/api/orders/"]["post"]["parameters"]}
    assert client.get("/api/docs/").status_code == 200


def test_the_receipt_of_an_order_that_ended_without_a_sale_says_there_will_be_none(api, shopper, make_product):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1}, pay_with="pm_card_chargeDeclined")

    response = api.get(f"/api/orders/{order.reference}/receipt")

    assert response.status_code == 404
    assert response.json() == {
        "detail": "The order ended without a sale, so it has no receipt.",
        "reason": "order_not_completed",
        "state": "PAYMENT_FAILED",
    }
    assert "Retry-After" not in response


def test_the_receipt_of_an_order_in_progress_says_when_to_ask_again(api, shopper, make_product, held_pipeline):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1})

    response = api.get(f"/api/orders/{order.reference}/receipt")

    assert response.status_code == 404
    assert response.json()["reason"] == "order_in_progress"
    assert response.json()["state"] == "VALIDATED"
    assert int(response["Retry-After"]) > 0


def test_the_schema_documents_why_a_receipt_is_missing(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    missing = schema["paths"]["/api/orders/{reference}/receipt"]["get"]["responses"]["404"]
    assert missing["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/NoReceiptOutput"
    assert set(schema["components"]["schemas"]["NoReceiptReason"]["enum"]) == {
        "order_not_found",
        "order_in_progress",
        "not_yet_generated",
        "order_not_completed",
    }
