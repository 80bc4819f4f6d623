"""POST /api/orders/ and its alias POST /api/place-order: what a shopper's client sees."""

import io
import json
import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.management import call_command
from rest_framework.test import APIClient

from inventory.models import Product, Stock, StockMovement
from inventory.services import adjust_stock
from orders.models import Order
from tests.support.concurrency import all_at_once
from tests.support.invariants import row_counts, stock_of

PLACE_ORDER_PATHS = pytest.mark.parametrize("path", ["/api/orders/", "/api/place-order"], ids=["orders", "alias"])


@pytest.fixture
def catalog(db):
    """A mug for sale and a retired poster; no pipeline runs in these tests' transactions."""
    for sku, active in (("MUG-001", True), ("POSTER-OLD", False)):
        product = Product.objects.create(sku=sku, name=sku.title(), price=Decimal("12.50"), active=active)
        Stock.objects.create(product=product)
        adjust_stock(product=product, delta=10, reason=StockMovement.Reason.IMPORT)


def order(*, email="shopper@example.com", lines=None, payment_method="pm_card_visa") -> dict:
    body = {"email": email, "lines": [{"sku": "MUG-001", "quantity": 1}] if lines is None else lines}
    if payment_method is not None:
        body["payment_method"] = payment_method
    return body


def mug(quantity) -> list[dict]:
    return [{"sku": "MUG-001", "quantity": quantity}]


INVALID_ORDERS = [
    pytest.param(order(lines=[{"sku": "NOPE-404", "quantity": 1}]), "lines", id="unknown-sku"),
    pytest.param(order(lines=[{"sku": "POSTER-OLD", "quantity": 1}]), "lines", id="inactive-sku"),
    pytest.param(order(lines=mug(0)), "lines", id="zero-quantity"),
    pytest.param(order(lines=mug(-1)), "lines", id="negative-quantity"),
    pytest.param(order(lines=mug(2.5)), "lines", id="fractional-quantity-2.5"),
    pytest.param(order(lines=mug(2.0)), "lines", id="fractional-quantity-2.0"),
    pytest.param(order(lines=mug("2")), "lines", id="string-quantity"),
    pytest.param(order(lines=mug(True)), "lines", id="boolean-quantity"),
    pytest.param(order(lines=mug(None)), "lines", id="null-quantity"),
    pytest.param(order(lines=mug(settings.ORDER_MAX_QUANTITY + 1)), "lines", id="quantity-over-the-limit"),
    pytest.param(order(lines=mug(10**30)), "lines", id="huge-quantity"),
    pytest.param(order(lines=mug(600) + mug(600)), "lines", id="one-sku-over-the-limit-across-lines"),
    pytest.param(order(lines=[{"quantity": 1}]), "lines", id="line-without-sku"),
    pytest.param(order(lines=["MUG-001"]), "lines", id="line-not-an-object"),
    pytest.param(order(lines=[]), "lines", id="empty-lines"),
    pytest.param(order(lines="MUG-001"), "lines", id="lines-not-a-list"),
    pytest.param(order(lines=mug(1) * (settings.ORDER_MAX_LINES + 1)), "lines", id="more-lines-than-allowed"),
    pytest.param(order(email="not-an-email"), "email", id="bad-email"),
    pytest.param(order(email=""), "email", id="blank-email"),
    pytest.param(order(payment_method=None), "payment_method", id="missing-payment-method"),
    pytest.param(order(payment_method=""), "payment_method", id="blank-payment-method"),
    pytest.param({}, "email", id="empty-object"),
]

UNREADABLE_BODIES = [
    pytest.param('{"email": "shopper@example.com", "lines": [', "application/json", "body", id="malformed-json"),
    pytest.param(
        '{"email": "a@b.co", "lines": [{"sku": "MUG-001", "quantity": NaN}], "payment_method": "pm_card_visa"}',
        "application/json",
        "body",
        id="json-with-nan",
    ),
    pytest.param(json.dumps([order()]), "application/json", "non_field_errors", id="json-array"),
    pytest.param("null", "application/json", "non_field_errors", id="json-null"),
    pytest.param(
        "email=shopper%40example.com&payment_method=pm_card_visa",
        "application/x-www-form-urlencoded",
        "content_type",
        id="form-encoded",
    ),
    pytest.param(json.dumps(order()), "text/plain", "content_type", id="json-sent-as-text-plain"),
]


@PLACE_ORDER_PATHS
@pytest.mark.parametrize(("body", "field"), INVALID_ORDERS)
def test_an_invalid_order_is_refused_with_field_errors_and_writes_nothing(api, catalog, path, body, field):
    before = row_counts()

    response = api.post(path, body, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert row_counts() == before
    assert stock_of("MUG-001").reserved == 0


@PLACE_ORDER_PATHS
@pytest.mark.parametrize(("raw", "content_type", "field"), UNREADABLE_BODIES)
def test_a_body_that_is_not_a_json_object_is_refused_and_writes_nothing(
    client, catalog, path, raw, content_type, field
):
    before = row_counts()

    response = client.post(path, raw, content_type=content_type)

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert row_counts() == before


@PLACE_ORDER_PATHS
def test_an_over_long_idempotency_key_is_refused_and_writes_nothing(api, catalog, path):
    before = row_counts()

    response = api.post(path, order(), format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()
    assert row_counts() == before


def test_an_unknown_sku_is_reported_on_its_own_line_with_every_other_bad_line(api, catalog):
    lines = [
        {"sku": "MUG-001", "quantity": 1},
        {"sku": "NOPE-404", "quantity": 1},
        {"sku": "POSTER-OLD", "quantity": 1},
    ]

    response = api.post("/api/orders/", order(lines=lines), format="json")

    assert response.status_code == 400
    errors = response.json()["lines"]
    assert set(errors) == {"1", "2"}
    assert "NOPE-404" in errors["1"]["sku"][0]
    assert "POSTER-OLD" in errors["2"]["sku"][0]


def test_a_malformed_quantity_is_reported_under_its_line_and_field(api, catalog):
    response = api.post("/api/orders/", order(lines=mug(1) + mug("two")), format="json")

    assert response.status_code == 400
    assert list(response.json()["lines"]) == ["1"]
    assert "quantity" in response.json()["lines"]["1"]


@PLACE_ORDER_PATHS
def test_an_accepted_order_answers_202_with_its_reference_state_and_status_url(api, make_product, path):
    make_product("MUG-001", on_hand=5)

    response = api.post(path, order(lines=mug(2)), format="json")

    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == {"reference", "state", "status_url"}
    assert body["state"] == "VALIDATED"
    assert body["status_url"] == f"http://testserver/api/orders/{body['reference']}/"
    assert response["Location"] == body["status_url"]
    assert "Idempotent-Replayed" not in response
    assert Order.objects.get(reference=body["reference"]).lines.get().quantity == 2


def test_the_same_sku_on_two_lines_is_ordered_once_with_both_quantities(api, make_product):
    make_product("MUG-001", price="3.00", on_hand=5)

    response = api.post("/api/orders/", order(lines=mug(1) + mug(2)), format="json")

    assert response.status_code == 202
    placed = Order.objects.get(reference=response.json()["reference"])
    assert [(line.sku, line.quantity) for line in placed.lines.all()] == [("MUG-001", 3)]
    assert placed.total == Decimal("9.00")


def test_products_priced_in_two_currencies_cannot_share_an_order(api, make_product):
    make_product("MUG-001", currency="USD")
    make_product("MUG-EU", currency="EUR")
    before = row_counts()

    response = api.post("/api/orders/", order(lines=mug(1) + [{"sku": "MUG-EU", "quantity": 1}]), format="json")

    assert response.status_code == 400
    assert "different currencies" in response.json()["lines"][0]
    assert row_counts() == before


@PLACE_ORDER_PATHS
def test_replaying_a_request_with_its_idempotency_key_returns_the_same_order_and_writes_nothing(
    api, make_product, path
):
    make_product("MUG-001", on_hand=5)
    first = api.post(path, order(lines=mug(2)), format="json", HTTP_IDEMPOTENCY_KEY="checkout-42")
    after_first = row_counts()

    replay = api.post(path, order(lines=mug(2)), format="json", HTTP_IDEMPOTENCY_KEY="checkout-42")

    assert replay.status_code == 202
    assert replay.json()["reference"] == first.json()["reference"]
    assert replay["Idempotent-Replayed"] == "true"
    assert row_counts() == after_first
    assert Order.objects.count() == 1
    assert stock_of("MUG-001").on_hand == 3


@PLACE_ORDER_PATHS
def test_reusing_an_idempotency_key_for_another_request_is_refused_with_409_and_writes_nothing(api, make_product, path):
    make_product("MUG-001", on_hand=5)
    api.post(path, order(lines=mug(2)), format="json", HTTP_IDEMPOTENCY_KEY="checkout-42")
    after_first = row_counts()

    conflict = api.post(path, order(lines=mug(3)), format="json", HTTP_IDEMPOTENCY_KEY="checkout-42")

    assert conflict.status_code == 409
    assert "Idempotency-Key" in conflict.json()
    assert row_counts() == after_first
    assert stock_of("MUG-001").on_hand == 3


def test_a_replay_returns_its_order_even_after_the_stock_ran_out_and_the_product_was_retired(api, make_product):
    mug_product = make_product("MUG-001", on_hand=2)
    first = api.post("/api/orders/", order(lines=mug(2)), format="json", HTTP_IDEMPOTENCY_KEY="checkout-7")
    mug_product.active = False
    mug_product.save()
    after_first = row_counts()

    replay = api.post("/api/orders/", order(lines=mug(2)), format="json", HTTP_IDEMPOTENCY_KEY="checkout-7")

    assert replay.status_code == 202, replay.content
    assert replay.json()["reference"] == first.json()["reference"]
    assert replay["Idempotent-Replayed"] == "true"
    assert row_counts() == after_first


@pytest.mark.requires_postgres
def test_two_requests_racing_with_one_idempotency_key_make_one_order(make_product, held_pipeline):
    make_product("MUG-001", on_hand=5)

    def post(_: int):
        return APIClient().post("/api/orders/", order(lines=mug(1)), format="json", HTTP_IDEMPOTENCY_KEY="k-9")

    answers = all_at_once(post, 4)
    assert [a.status_code for a in answers] == [202] * 4
    assert len({a.json()["reference"] for a in answers}) == 1
    assert sorted(a.get("Idempotent-Replayed", "") for a in answers) == ["", "true", "true", "true"]
    assert Order.objects.count() == 1
    assert stock_of("MUG-001").reserved == 1


def test_without_an_idempotency_key_two_requests_are_two_orders(api, make_product):
    make_product("MUG-001", on_hand=5)

    first = api.post("/api/orders/", order(), format="json")
    second = api.post("/api/orders/", order(), format="json")

    assert first.json()["reference"] != second.json()["reference"]
    assert Order.objects.count() == 2


def test_order_references_are_long_random_and_unknown_ones_are_not_found(api, make_product):
    make_product("MUG-001", on_hand=5)

    references = [api.post("/api/orders/", order(), format="json").json()["reference"] for _ in range(2)]

    for reference in references:
        # 128 random bits in URL-safe base64: 22 characters after the prefix, no sequence to walk.
        assert re.fullmatch(r"ord_[A-Za-z0-9_-]{22}", reference), reference
    assert references[0] != references[1]
    assert references[0][4:12] != references[1][4:12]
    assert api.get("/api/orders/ord_doesnotexist0000000000/").status_code == 404
    near_miss = references[0][:-1] + ("A" if references[0][-1] != "A" else "B")
    assert api.get(f"/api/orders/{near_miss}/").status_code == 404
    assert api.get(f"/api/orders/{Order.objects.first().pk}/").status_code == 404


def test_an_order_beyond_the_stock_is_answered_rejected_at_once_with_nothing_reserved(api, make_product, held_pipeline):
    make_product("MUG-001", on_hand=1)

    response = api.post("/api/orders/", order(lines=mug(2)), format="json")

    assert response.status_code == 202, response.content
    assert response.json()["state"] == "REJECTED"
    follow = api.get(response.json()["status_url"]).json()
    assert (follow["state"], follow["failure_code"]) == ("REJECTED", "out_of_stock")
    assert "MUG-001: 2 requested, 1 available" in follow["failure_reason"]
    assert stock_of("MUG-001").reserved == 0
    # Only the failure email is left to send; no payment step is queued.
    assert held_pipeline.queued() == [("orders.tasks.send_failure_notification", (Order.objects.get().pk,))]


def test_the_example_body_of_the_api_docs_places_an_order_on_the_demo_catalog(api, client, db):
    call_command("import_stock", "--if-empty", "inventory/demo_catalog.csv", stdout=io.StringIO())
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    body = schema["paths"]["/api/orders/"]["post"]["requestBody"]["content"]["application/json"]
    documented = [example["value"] for example in body["examples"].values()]

    assert documented, "the docs show an example body"
    for example in documented:
        response = api.post("/api/orders/", example, format="json")

        assert response.status_code == 202, response.json()
        assert response.json()["state"] == "VALIDATED", "the stock is reserved: the order is on its way"
