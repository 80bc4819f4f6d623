"""The order back office in Django admin as a manager uses it: find orders, read an order's
whole execution, act on it behind confirmation pages, export, and the home page's tiles."""

import csv
import io
import json
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.core import mail
from django.test import Client

from orders.models import EventKind, Order
from payments.models import Refund, SimulatedPaymentIntent, StripeEvent
from receipts.models import Receipt
from tests.support.invariants import stock_of
from tests.support.order_admin import action_page, form_token, listed

pytestmark = pytest.mark.usefixtures("stock_invariants_hold")


def order_page(order) -> str:
    return f"/admin/orders/order/{order.pk}/change/"


def test_the_order_page_is_read_only_and_shows_the_timeline_history_and_emails(manager, make_product, shopper):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 2})

    html = manager.get(order_page(order)).content.decode()

    assert 'name="_save"' not in html and 'name="_continue"' not in html
    assert "<svg" in html and 'data-move="PAID-CONFIRMED"' in html and 'data-state="COMPLETED" data-current' in html
    for expected in ("validate_order", "update_inventory", "send_notification", "captured", "confirmation", "sent"):
        assert expected in html
    assert "Export execution (JSON)" in html and "Resend the confirmation email" in html
    assert "Redrive from the failed step" not in html  # not offered where it cannot be done


def test_a_manager_redrives_a_failed_order_from_its_confirmation_page_once_however_often_it_is_posted(
    manager, make_product, shopper, settings
):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 2}, pay_with="pm_sim_unavailable")
    settings.SIMULATED_GATEWAY_OUTAGE = False

    page = manager.get(action_page(order, "redrive")).content.decode()
    form = {"reason": "The provider is back", "action_token": form_token(page)}
    first = manager.post(action_page(order, "redrive"), form, follow=True)
    second = manager.post(action_page(order, "redrive"), form, follow=True)

    assert "not run again" in page and "A new authorisation of 25.00 USD" in page
    assert "redriven from process_payment (redrive #1)" in first.content.decode()
    assert "already done by manager" in second.content.decode()
    order.refresh_from_db()
    assert (order.state, order.redrive_count) == ("COMPLETED", 1)
    assert SimulatedPaymentIntent.objects.filter(status="succeeded").count() == 1
    assert order.events.filter(kind=EventKind.REDRIVEN).count() == 1
    assert 'data-move="FAILED-VALIDATED"' in manager.get(order_page(order)).content.decode()


def test_a_redrive_is_refused_on_its_page_with_the_reason_when_the_stock_is_gone(
    manager, make_product, shopper, settings
):
    make_product("MUG-001", on_hand=2)
    order = shopper.buys({"MUG-001": 2}, pay_with="pm_sim_unavailable")
    shopper.buys({"MUG-001": 2}, email="quicker@example.com")

    page = manager.get(action_page(order, "redrive")).content.decode()
    posted = manager.post(action_page(order, "redrive"), {"reason": "try", "action_token": "t"})

    assert "Not enough stock: MUG-001: 2 requested, 0 available." in page
    assert 'type="submit" class="default"' not in page
    assert "Not enough stock: MUG-001: 2 requested, 0 available." in posted.content.decode()
    order.refresh_from_db()
    assert order.state == "FAILED"


def test_an_action_the_role_lacks_is_refused_naming_the_permission(client, make_product, shopper, transactional_db):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 2}, pay_with="pm_sim_unavailable")
    viewer = User.objects.create_user("auditor", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_order"))
    client.force_login(viewer)

    for name, permission in [
        ("redrive", "orders.redrive_order"),
        ("retry", "orders.retry_order_step"),
        ("resend", "orders.resend_order_email"),
        ("regenerate", "orders.regenerate_receipt"),
        ("cancel", "orders.cancel_order"),
        ("refund", "orders.refund_order"),
    ]:
        response = client.post(action_page(order, name), {"reason": "x", "action_token": "t"})
        assert response.status_code == 403, name
        assert permission in response.content.decode()
    assert client.get("/admin/orders/order/export.csv").status_code == 403
    order.refresh_from_db()
    assert order.state == "FAILED" and order.events.filter(actor="auditor").count() == 0


def test_a_double_posted_resend_sends_one_copy(manager, make_product, shopper):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1})
    token = form_token(manager.get(action_page(order, "resend")).content.decode())

    for _ in range(2):
        manager.post(action_page(order, "resend"), {"reason": "Shopper asked", "action_token": token})

    assert [m.subject.endswith("(copy sent again)") for m in mail.outbox] == [False, True]


def test_a_partial_refund_from_its_page_can_return_units_and_says_what_it_moves(manager, make_product, shopper):
    mug = make_product("MUG-001", price="12.50", on_hand=5)
    order = shopper.buys({"MUG-001": 2})

    page = manager.get(action_page(order, "refund")).content.decode()
    manager.post(
        action_page(order, "refund"),
        {
            "refund": "part",
            "refund_reason": "damaged",
            "amount": "12.50",
            "reason": "chipped",
            f"return_{mug.pk}": "1",
            "action_token": form_token(page),
        },
    )

    assert "Up to 25.00 USD can be refunded" in page and "Back to stock: MUG-001" in page
    assert stock_of("MUG-001").on_hand == 4
    assert mail.outbox[-1].subject == f"A refund for your order {order.reference}"


def test_a_refund_posted_without_an_amount_refunds_nothing_and_asks_for_one(manager, make_product, shopper):
    make_product("MUG-001", price="20.00", on_hand=5)
    order = shopper.buys({"MUG-001": 2})
    page = manager.get(action_page(order, "refund")).content.decode()

    for posted in (
        {},
        {"refund": "part"},
        {"refund": "part", "refund_reason": "damaged", "amount": "0"},
        {"refund": "part", "amount": "0.00"},
    ):
        response = manager.post(
            action_page(order, "refund"), {"reason": "chipped", "action_token": form_token(page), **posted}
        )

        assert response.status_code == 200, posted  # the form again, with its errors
        assert not Refund.objects.exists(), posted
    html = response.content.decode()
    assert "between 0" not in page and "Leave empty" not in page
    assert "Ensure this value is greater than or equal to 0.01." in html
    assert (
        "Give the amount to refund"
        in manager.post(
            action_page(order, "refund"),
            {"refund": "part", "refund_reason": "damaged", "reason": "chipped", "action_token": form_token(page)},
        ).content.decode()
    )


def test_refunding_all_is_a_choice_that_names_the_amount_left(manager, make_product, shopper):
    make_product("MUG-001", price="20.00", on_hand=5)
    order = shopper.buys({"MUG-001": 2})
    page = manager.get(action_page(order, "refund")).content.decode()

    assert "Refund all (40.00 USD)" in page
    manager.post(
        action_page(order, "refund"),
        {"refund": "all", "refund_reason": "damaged", "reason": "lost", "action_token": form_token(page)},
    )

    assert [(r.amount, r.currency) for r in Refund.objects.all()] == [(Decimal("40.00"), "USD")]


def test_a_note_is_added_to_the_history(manager, make_product, shopper):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1})
    token = form_token(manager.get(order_page(order)).content.decode())

    manager.post(f"/admin/orders/order/{order.pk}/note/", {"note": "Called the shopper.", "action_token": token})
    manager.post(f"/admin/orders/order/{order.pk}/note/", {"note": "Called the shopper.", "action_token": token})

    assert order.events.filter(kind=EventKind.NOTE_ADDED).count() == 1
    assert "Called the shopper." in manager.get(order_page(order)).content.decode()


def test_failed_orders_show_up_as_needing_attention_and_filters_find_by_payment_sku_and_failure(
    manager, make_product, shopper
):
    make_product("MUG-001", on_hand=5)
    make_product("TEA-001", on_hand=5)
    sold = shopper.buys({"MUG-001": 1})
    failed = shopper.buys({"TEA-001": 1}, pay_with="pm_sim_unavailable")
    declined = shopper.buys({"MUG-001": 1}, pay_with="pm_card_chargeDeclined")

    assert listed(manager.get("/admin/orders/order/?attention=needs")) == {failed.reference}
    assert listed(manager.get("/admin/orders/order/?payment__status__exact=captured")) == {sold.reference}
    assert listed(manager.get("/admin/orders/order/?lines__sku=TEA-001")) == {failed.reference}
    assert listed(manager.get("/admin/orders/order/?failure_code=generic_decline")) == {declined.reference}
    assert listed(manager.get("/admin/orders/order/?created_at__gte=2000-01-01&created_at__lt=2000-01-02")) == set()


def test_search_finds_an_order_by_receipt_number_and_by_the_providers_payment_id(manager, make_product, shopper):
    make_product("MUG-001", on_hand=5)
    first, second = shopper.buys({"MUG-001": 1}), shopper.buys({"MUG-001": 1}, email="other@example.com")
    receipt = Receipt.objects.get(order=second)
    intent = SimulatedPaymentIntent.objects.get(reference=first.payment.provider_reference)

    assert listed(manager.get(f"/admin/orders/order/?q={receipt.number}")) == {second.reference}
    assert listed(manager.get(f"/admin/orders/order/?q={intent.reference}")) == {first.reference}
    assert listed(manager.get("/admin/orders/order/?q=other@example.com")) == {second.reference}


def test_the_filtered_list_exports_as_csv(manager, make_product, shopper):
    make_product("MUG-001", on_hand=5)
    sold = shopper.buys({"MUG-001": 2})
    shopper.buys({"MUG-001": 1}, pay_with="pm_card_chargeDeclined")

    response = manager.get("/admin/orders/order/export.csv?state__exact=COMPLETED")

    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert response["Content-Type"].startswith("text/csv")
    assert [(r["reference"], r["state"], r["lines"], r["total"], r["payment_status"]) for r in rows] == [
        (sold.reference, "COMPLETED", "2 x MUG-001", "25.00", "captured")
    ]
    assert rows[0]["receipt"] == Receipt.objects.get(order=sold).number


def test_the_whole_execution_exports_as_json(manager, make_product, shopper):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1})

    data = json.loads(manager.get(f"/admin/orders/order/{order.pk}/execution.json").content)

    assert data["order"]["state"] == "COMPLETED" and data["payment"]["status"] == "captured"
    assert [e["step"] for e in data["events"]][:2] == ["validate_order", "process_payment"]
    assert data["emails"][0]["kind"] == "confirmation"


def test_the_execution_page_and_its_export_show_the_stock_ledger_lines_of_the_order(manager, make_product, shopper):
    make_product("MUG-001", on_hand=5)
    make_product("TEE-001", on_hand=5)
    shopper.buys({"TEE-001": 1})  # another order's line must not show
    order = shopper.buys({"MUG-001": 3})

    html = manager.get(order_page(order)).content.decode()
    data = json.loads(manager.get(f"/admin/orders/order/{order.pk}/execution.json").content)

    ledger = re.search(r'data-testid="ledger">(.*?)</table>', html, re.S).group(1)
    rows = [re.sub(r"<[^>]+>", " ", row).split() for row in re.findall(r'<tr class="ledger-.*?</tr>', ledger, re.S)]
    assert [row[2:] for row in rows] == [["MUG-001", "-3", "Sale"]]
    assert [(line["sku"], line["quantity"], line["reason"]) for line in data["ledger"]] == [("MUG-001", -3, "sale")]


def test_the_home_page_tiles_count_what_needs_a_look_and_link_to_the_filtered_lists(manager, make_product, shopper):
    make_product("MUG-001", on_hand=3)
    shopper.buys({"MUG-001": 1}, pay_with="pm_sim_unavailable")
    StripeEvent.objects.create(event_id="evt_1", type="charge.refunded", payload={}, error="boom")

    html = manager.get("/admin/").content.decode()

    tiles = dict(re.findall(r'href="([^"]+)" class="tile[^"]*"[^>]*>\s*<span[^>]*>(\d+)</span>', html))
    assert tiles["/admin/orders/order/?attention=needs"] == "1"
    assert tiles["/admin/orders/order/?attention=overdue"] == "0"
    assert tiles["/admin/payments/stripeevent/?error__gt="] == "1"
    assert tiles["/admin/inventory/product/?low_stock=yes"] == "1"  # 3 available, threshold 5
    assert listed(manager.get("/admin/orders/order/?attention=needs")) == set(
        Order.objects.values_list("reference", flat=True)
    )
    assert "evt_1" in manager.get("/admin/payments/stripeevent/?error__gt=").content.decode()


def test_a_bulk_redrive_confirms_first_and_acts_on_at_most_the_cap(manager, make_product, shopper, settings):
    make_product("MUG-001", on_hand=10)
    orders = [shopper.buys({"MUG-001": 1}, pay_with="pm_sim_unavailable") for _ in range(3)]
    settings.SIMULATED_GATEWAY_OUTAGE = False
    settings.ORDER_BULK_ACTION_CAP = 2
    selected = {"action": "redrive_selected", "_selected_action": [o.pk for o in orders]}

    confirmation = manager.post("/admin/orders/order/", selected).content.decode()
    token = form_token(confirmation)
    done = manager.post(
        "/admin/orders/order/", {**selected, "confirmed": "yes", "reason": "outage", "action_token": token}, follow=True
    )

    assert "At most <strong>2</strong> orders are done per click" in confirmation
    assert "over the cap of 2 per click" in done.content.decode()
    assert sorted(Order.objects.values_list("state", flat=True)) == ["COMPLETED", "COMPLETED", "FAILED"]


def attention_on_page(html: str) -> str:
    return re.search(r'field-attention.*?<div class="readonly">([^<]*)</div>', html, re.DOTALL).group(1).strip()


def attention_in_list(html: str) -> dict[str, str]:
    rows = re.findall(r"(ord_[A-Za-z0-9_-]{22})</a>.*?<td class=\"field-attention\">([^<]*)</td>", html, re.DOTALL)
    return dict(rows)


def test_needing_attention_means_one_thing_on_the_tile_the_filter_the_list_and_the_order_page(
    manager, make_product, shopper, settings
):
    from datetime import timedelta

    from django.utils import timezone

    make_product("MUG-001", on_hand=5)
    sold = shopper.buys({"MUG-001": 1})
    failed = shopper.buys({"MUG-001": 1}, pay_with="pm_sim_unavailable")
    long_failed = shopper.buys({"MUG-001": 1}, pay_with="pm_sim_unavailable")
    past_redrive = timezone.now() - timedelta(days=settings.ORDER_REDRIVE_DAYS + 1)
    Order.objects.filter(pk=long_failed.pk).update(updated_at=past_redrive)  # too old to redrive: nothing to do

    tiles = dict(
        re.findall(
            r'href="([^"]+)" class="tile[^"]*"[^>]*>\s*<span[^>]*>(\d+)</span>', manager.get("/admin/").content.decode()
        )
    )
    assert tiles["/admin/orders/order/?attention=needs"] == "1"
    assert listed(manager.get("/admin/orders/order/?attention=needs")) == {failed.reference}
    assert attention_in_list(manager.get("/admin/orders/order/").content.decode()) == {
        sold.reference: "No",
        failed.reference: "Failed, redrivable",
        long_failed.reference: "No",
    }
    assert attention_on_page(manager.get(order_page(failed)).content.decode()) == "Failed, redrivable"
    assert attention_on_page(manager.get(order_page(long_failed)).content.decode()) == "No"
    assert attention_on_page(manager.get(order_page(sold)).content.decode()) == "No"


def test_the_back_office_carries_the_shops_name_and_counts_in_proper_words(manager, make_product, shopper, settings):
    settings.SHOP_NAME = "Harbour Mugs"
    make_product("MUG-001", on_hand=4)  # one low-stock product (threshold 5), one ledger line
    failed = shopper.buys({"MUG-001": 1}, pay_with="pm_sim_unavailable")

    home = manager.get("/admin/").content.decode()
    assert "Harbour Mugs back office" in home and "Django administration" not in home
    tiles = re.findall(r"<span[^>]*>(\d+)</span>\s*<span>([^<]+)</span>", home)
    assert {label for count, label in tiles if count == "1"} == {"Order needing attention", "Low-stock product"}
    assert "Harbour Mugs back office" in Client().get("/admin/login/").content.decode()
    assert "1 stock ledger line\n" in manager.get("/admin/inventory/stockmovement/").content.decode()
    selected = {"action": "redrive_selected", "_selected_action": [failed.pk]}
    assert "Redrive from the failed step: 1 order<" in manager.post("/admin/orders/order/", selected).content.decode()
