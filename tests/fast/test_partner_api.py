"""The partner API (/api/partner/v1/): keys with scopes, orders by when they changed, stock
levels, and stock adjustments once per Idempotency-Key through the admin's ledger."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from inventory.models import Stock, StockMovement
from orders.models import Order
from partners.models import PartnerKey, PartnerStockAdjustment
from partners.services import issue_partner_key, revoke_partner_key
from tests.support.concurrency import all_at_once

ORDERS = "/api/partner/v1/orders/"
STOCK = "/api/partner/v1/stock/"
ADJUST = "/api/partner/v1/stock/adjustments/"


def partner(*scopes: str, name: str = "Warehouse") -> APIClient:
    """An API client sending a new key with these scopes."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_partner_key(name=name, scopes=list(scopes)).token}")
    return client


def adjust(client: APIClient, body: dict, key: str | None = "count-1"):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(ADJUST, body, format="json", headers=headers)


def ledger_lines(sku: str) -> int:
    return StockMovement.objects.filter(product__sku=sku).count()


def stock_of(sku: str) -> Stock:
    return Stock.objects.get(product__sku=sku)


def walk(client: APIClient, url: str) -> list[dict]:
    """Every row of a paginated list, following `next` to the end."""
    rows: list[dict] = []
    while url:
        answer = client.get(url)
        assert answer.status_code == 200, answer.content
        rows += answer.json()["results"]
        url = answer.json()["next"]
    return rows


def test_a_key_with_orders_read_lists_orders_changed_since_a_time_page_by_page(make_product, shopper):
    make_product("MUG-001", on_hand=100)
    orders = [shopper.buys({"MUG-001": 1}, email=f"s{n}@example.com") for n in range(7)]
    long_ago, since = timezone.now() - timedelta(days=2), timezone.now() - timedelta(hours=1)
    # Three orders last changed yesterday, four within the hour (two at the same instant: a tie).
    changes = [long_ago] * 3 + [since + timedelta(minutes=5)] * 2 + [timezone.now()] * 2
    for order, changed in zip(orders, changes, strict=True):
        Order.objects.filter(pk=order.pk).update(updated_at=changed)
    client = partner("orders:read")

    url = f"{ORDERS}?page_size=2&updated_since={since.isoformat().replace('+00:00', 'Z')}"
    rows = walk(client, url)

    assert sorted(row["reference"] for row in rows) == sorted(order.reference for order in orders[3:])
    assert [row["updated_at"] for row in rows] == sorted(row["updated_at"] for row in rows)
    assert rows[0]["lines"] == [
        {
            "sku": "MUG-001",
            "name": "Product MUG-001",
            "quantity": 1,
            "unit_price": "12.50",
            "line_total": "12.50",
            "units_left": None,
        }
    ]
    assert "history" not in rows[0] and "payment_action" not in rows[0]
    assert rows[0]["payment"]["status"] == "captured"


def test_orders_filter_by_state_and_one_order_shows_its_lines_payment_and_receipt_link(make_product, shopper):
    make_product("MUG-001", on_hand=10)
    completed = shopper.buys({"MUG-001": 2})
    declined = shopper.buys({"MUG-001": 1}, pay_with="pm_card_chargeDeclined")
    client = partner("orders:read")

    listed = client.get(ORDERS, {"state": "PAYMENT_FAILED"}).json()["results"]
    one = client.get(f"{ORDERS}{completed.reference}/")

    assert [row["reference"] for row in listed] == [declined.reference]
    assert one.status_code == 200
    assert one.json()["state"] == "COMPLETED"
    assert one.json()["total"] == str(completed.total)
    assert one.json()["payment"] == {
        "status": "captured",
        "amount": str(completed.total),
        "amount_refunded": "0.00",
        "currency": "USD",
    }
    receipt = client.get(one.json()["receipt_url"])
    assert receipt.status_code == 200 and receipt["Content-Type"] == "application/pdf"
    assert client.get(f"{ORDERS}ord_nope/").status_code == 404


def test_bad_filters_are_a_400_naming_the_field(db):
    client = partner("orders:read")

    answer = client.get(ORDERS, {"state": "SHIPPED", "updated_since": "2026-01-01T10:00:00"})

    assert answer.status_code == 400
    assert set(answer.json()) == {"state", "updated_since"}


def test_stock_levels_list_every_product_with_units_on_hand_reserved_available(make_product):
    make_product("MUG-001", on_hand=7)
    make_product("CUP-001", on_hand=0)

    rows = walk(partner("stock:read"), f"{STOCK}?page_size=1")

    assert rows == [
        {"sku": "CUP-001", "name": "Product CUP-001", "active": True, "on_hand": 0, "reserved": 0, "available": 0},
        {"sku": "MUG-001", "name": "Product MUG-001", "active": True, "on_hand": 7, "reserved": 0, "available": 7},
    ]


def test_an_adjustment_sent_twice_with_one_key_moves_stock_once_and_writes_one_ledger_line(make_product):
    make_product("MUG-001", on_hand=10)
    client = partner("stock:write", name="Leeds")
    lines_before = ledger_lines("MUG-001")

    first = adjust(client, {"sku": "MUG-001", "delta": -3, "note": "breakage"})
    again = adjust(client, {"sku": "MUG-001", "delta": -3, "note": "breakage"})

    assert first.status_code == again.status_code == 201, first.content
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert first.json()["on_hand"] == 7 and first.json()["moved"] == -3
    assert stock_of("MUG-001").on_hand == 7
    assert ledger_lines("MUG-001") == lines_before + 1
    line = StockMovement.objects.get(pk=first.json()["ledger_line"])
    assert (line.quantity, line.reason, line.user) == (-3, "adjustment", None)
    assert line.note.startswith("Partner Leeds (pk_") and line.note.endswith("breakage")


def test_a_counted_level_brings_stock_to_it_through_the_ledger(make_product):
    make_product("MUG-001", on_hand=10)

    answer = adjust(partner("stock:write"), {"sku": "MUG-001", "on_hand": 14})

    assert answer.status_code == 201, answer.content
    assert (answer.json()["moved"], stock_of("MUG-001").on_hand) == (4, 14)


def test_one_key_reused_for_a_different_adjustment_is_a_409_and_moves_nothing(make_product):
    make_product("MUG-001", on_hand=10)
    client = partner("stock:write")
    adjust(client, {"sku": "MUG-001", "delta": 2})

    other = adjust(client, {"sku": "MUG-001", "delta": 5})

    assert other.status_code == 409
    assert "Idempotency-Key" in other.json()
    assert stock_of("MUG-001").on_hand == 12


@pytest.mark.parametrize(
    ("body", "key", "field"),
    [
        ({"sku": "MUG-001", "delta": 2}, None, "Idempotency-Key"),
        ({"sku": "NOPE", "delta": 2}, "k", "sku"),
        ({"sku": "MUG-001", "delta": "2"}, "k", "delta"),
        ({"sku": "MUG-001", "delta": 0}, "k", "delta"),
        ({"sku": "MUG-001", "delta": 2, "on_hand": 3}, "k", "delta"),
        ({"sku": "MUG-001", "on_hand": -1}, "k", "on_hand"),
    ],
)
def test_bad_adjustments_are_a_400_naming_the_field_and_write_nothing(make_product, body, key, field):
    make_product("MUG-001", on_hand=10)
    lines_before = ledger_lines("MUG-001")

    answer = adjust(partner("stock:write"), body, key=key)

    assert answer.status_code == 400
    assert field in answer.json()
    assert (stock_of("MUG-001").on_hand, ledger_lines("MUG-001")) == (10, lines_before)
    assert not PartnerStockAdjustment.objects.exists()


def test_removing_units_that_orders_hold_is_refused_and_the_same_key_may_try_again(make_product, shopper):
    make_product("MUG-001", on_hand=3)
    Stock.objects.filter(product__sku="MUG-001").update(reserved=2)
    client = partner("stock:write")

    refused = adjust(client, {"sku": "MUG-001", "delta": -2}, key="k")
    Stock.objects.filter(product__sku="MUG-001").update(reserved=0)
    retried = adjust(client, {"sku": "MUG-001", "delta": -2}, key="k")

    assert refused.status_code == 422 and "reserved" in refused.json()["delta"][0]
    assert retried.status_code == 201 and stock_of("MUG-001").on_hand == 1


@pytest.mark.requires_postgres
def test_duplicate_adjustments_racing_with_one_key_write_one_ledger_line(make_product):
    make_product("MUG-001", on_hand=10)
    token = issue_partner_key(name="Racer", scopes=["stock:write"]).token
    lines_before = ledger_lines("MUG-001")

    def send(_: int):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return adjust(client, {"sku": "MUG-001", "delta": 5}, key="race-1")

    answers = all_at_once(send, 4)

    assert [a.status_code for a in answers] == [201] * 4
    assert sorted(a.get("Idempotent-Replayed", "") for a in answers) == ["", "true", "true", "true"]
    assert len({a.json()["ledger_line"] for a in answers}) == 1
    assert stock_of("MUG-001").on_hand == 15
    assert ledger_lines("MUG-001") == lines_before + 1


def test_without_a_key_or_with_an_unknown_or_revoked_key_the_answer_is_401(db):
    issued = issue_partner_key(name="Old ERP", scopes=["orders:read"])
    revoked = APIClient()
    revoked.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.token}")
    assert revoked.get(ORDERS).status_code == 200
    revoke_partner_key(issued.key)
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION=f"Bearer pk_{issued.key.prefix}.not-the-secret")

    answers = [APIClient().get(ORDERS), revoked.get(ORDERS), forged.get(ORDERS)]

    assert [a.status_code for a in answers] == [401, 401, 401]
    assert all(a["WWW-Authenticate"].startswith("Bearer") for a in answers)


def test_a_key_without_the_scope_gets_403_naming_it(make_product):
    make_product("MUG-001", on_hand=10)
    reader = partner("orders:read", "stock:read")

    answers = [
        partner("stock:read").get(ORDERS),
        partner("orders:read").get(STOCK),
        adjust(reader, {"sku": "MUG-001", "delta": 1}),
    ]

    assert [a.status_code for a in answers] == [403, 403, 403]
    assert "stock:write" in answers[2].json()["detail"]
    assert stock_of("MUG-001").on_hand == 10


def test_the_key_is_kept_only_as_a_hash_and_its_use_is_noted_once_a_minute(db, django_assert_num_queries):
    issued = issue_partner_key(name="ERP", scopes=["orders:read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.token}")
    secret = issued.token.partition(".")[2]

    client.get(ORDERS)
    first_use = PartnerKey.objects.get(pk=issued.key.pk).last_used_at
    client.get(ORDERS)

    stored = PartnerKey.objects.values_list("prefix", "secret_hash").get(pk=issued.key.pk)
    assert secret not in "".join(stored) and len(stored[1]) == 64
    assert first_use is not None
    assert PartnerKey.objects.get(pk=issued.key.pk).last_used_at == first_use


def test_each_key_has_its_own_rate_limit(db, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "partner_key": "2/min"},
    }
    busy, other = partner("orders:read"), partner("orders:read")

    answers = [busy.get(ORDERS).status_code for _ in range(3)]

    assert answers == [200, 200, 429]
    assert other.get(ORDERS).status_code == 200


def test_a_manager_issues_a_key_shown_once_and_revoking_it_locks_the_partner_out(manager):
    issued = manager.post("/admin/partners/partnerkey/add/", {"name": "Warehouse Leeds", "scopes": ["orders:read"]})
    token = re.search(r'<code id="partner-key"[^>]*>([^<]+)</code>', issued.content.decode()).group(1)
    key = PartnerKey.objects.get(name="Warehouse Leeds")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert "no-store" in issued["Cache-Control"]
    assert (key.scopes, key.created_by) == (["orders:read"], manager.user)
    assert client.get(ORDERS).status_code == 200

    listed = manager.get("/admin/partners/partnerkey/").content.decode()
    shown = manager.get(f"/admin/partners/partnerkey/{key.pk}/change/").content.decode()
    revoked = manager.post(
        "/admin/partners/partnerkey/", {"action": "revoke_selected", "_selected_action": [key.pk]}, follow=True
    )

    assert f"pk_{key.prefix}" in listed and token not in listed and token not in shown
    assert "Revoked 1 key(s)" in revoked.content.decode()
    assert client.get(ORDERS).status_code == 401
