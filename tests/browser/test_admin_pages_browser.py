"""The back office's pages as a clerk and a manager see them on a 1280 px laptop, in Debian's
Chromium against the live app: every list shows its columns without sideways scrolling, and
axe-core finds no serious or critical violation on the pages they work in.

Screenshots are kept in var/test-artifacts/admin-pages/ to be looked at.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from backoffice.actions import refund_order
from monitoring.models import AlarmFiring
from payments.models import StripeEvent
from tests.support.admin_client import PASSWORD, SUPERUSER, authenticator_app, make_account
from tests.support.browser import chromium_page, type_second_factor
from tests.support.processes import PROJECT_DIR
from tests.support.shop_page import (  # noqa: F401  (_orm_beside_playwright: the page's autouse fixture)
    _orm_beside_playwright,
    assert_no_serious_axe_violations,
)

pytestmark = pytest.mark.slow

ARTIFACTS = PROJECT_DIR / "var" / "test-artifacts" / "admin-pages"
LAPTOP = {"width": 1280, "height": 800}

# Each list a clerk or a manager reads, with the columns it must show.
LISTS = {
    "orders": ("/admin/orders/order/", ["Reference", "Email", "State", "Payment", "Total", "Attention", "Created"]),
    "products": ("/admin/inventory/product/", ["SKU", "Name", "Price", "On hand", "Reserved", "Available"]),
    "ledger": ("/admin/inventory/stockmovement/", ["When", "Product", "Change", "Reason", "Note", "Order", "User"]),
    "payments": ("/admin/payments/payment/", ["Order", "Provider", "Amount", "Status", "Amount refunded"]),
    "refunds": ("/admin/payments/refund/", ["Order", "Amount", "Status", "Requested by", "Reason", "Created"]),
    "webhook events": ("/admin/payments/stripeevent/", ["Event", "Type", "Received", "Processed", "Error"]),
    "alarm firings": ("/admin/monitoring/alarmfiring/", ["Alarm", "Summary", "Started", "Resolved", "Emailed"]),
}


@pytest.fixture
def a_shop_with_history(make_product, shopper):
    """A day's worth of everything the lists show: orders in each end, a refund, a low product,
    a failed webhook event, alarm firings (one resolved, one still firing)."""
    make_product("MUG-001", price="12.50", on_hand=40, name="Ceramic mug with a long descriptive name")
    make_product("TEE-BLUE-XL", price="19.99", on_hand=3, name="Cotton tee, blue, XL")
    sold = shopper.buys({"MUG-001": 2, "TEE-BLUE-XL": 1}, email="a.rather.long.address@shopper-example.com")
    shopper.buys({"MUG-001": 1}, pay_with="pm_sim_unavailable", email="second@example.com")
    shopper.buys({"MUG-001": 1}, pay_with="pm_card_chargeDeclined", email="third@example.com")
    refund_order(
        sold,
        manager="morgan",
        reason="One mug arrived chipped and came back",
        refund_reason="damaged",
        amount=Decimal("12.50"),
    )
    StripeEvent.objects.create(
        event_id="evt_1NqLbH2eZvKYlo2C0XbTlNdP",
        type="charge.dispute.created",
        payload={},
        error="No order for payment intent pi_3NqLbH2eZvKYlo2C1Xx",
    )
    now = timezone.now()
    AlarmFiring.objects.create(
        rule="failure_rate",
        started_at=now - timedelta(hours=2),
        resolved_at=now - timedelta(hours=1),
        last_seen_at=now - timedelta(hours=1),
        notified_at=now - timedelta(hours=2),
        resolve_notified_at=now - timedelta(hours=1),
        summary="3 of 10 orders ended FAILED in the last 15 min (30%)",
    )
    AlarmFiring.objects.create(
        rule="queue_age",
        started_at=now - timedelta(minutes=20),
        last_seen_at=now,
        notified_at=now - timedelta(minutes=19),
        summary="The oldest queued task has waited 312 s (limit 120 s)",
    )
    return sold


def log_in(page, base_url: str) -> None:
    user = make_account(SUPERUSER, "morgan")
    authenticator_app(user)
    page.set_viewport_size(LAPTOP)
    page.goto(base_url + "/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    type_second_factor(page, user)
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()


def keep(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name.replace(' ', '-')}.png"))  # the screen as it is, not scrolled


# The table's width against the box that scrolls it: wider means columns hidden off to the side.
TABLE_FIT = """() => {
  const table = document.querySelector("#result_list");
  const box = table.closest(".results") || table.parentElement;
  const headers = [...table.querySelectorAll("thead th")].map((th) => th.innerText.trim().toUpperCase());
  return { table: table.scrollWidth, box: box.clientWidth, headers };
}"""


def test_every_list_shows_its_key_columns_at_1280_px_without_sideways_scrolling(live_server, a_shop_with_history):
    misfits = {}
    with chromium_page() as page:
        log_in(page, live_server.url)
        for name, (url, columns) in LISTS.items():
            page.goto(live_server.url + url)
            fit = page.evaluate(TABLE_FIT)
            keep(page, f"list-{name}")
            missing = [c for c in columns if not any(h.startswith(c.upper()) for h in fit["headers"])]
            if fit["table"] > fit["box"] or missing:
                misfits[name] = {"table px": fit["table"], "visible px": fit["box"], "missing columns": missing}
    assert not misfits, misfits


def failed_order():
    from orders.models import Order

    return Order.objects.get(state="FAILED")


# The pages a clerk and a manager work in, each found from the scene (`a_shop_with_history`).
WORK_PAGES = {
    "order list": lambda sold: "/admin/orders/order/",
    "order page": lambda sold: f"/admin/orders/order/{sold.pk}/change/",
    "monitoring": lambda sold: "/admin/monitoring/",
    "stock list": lambda sold: "/admin/inventory/product/",
    "restock": lambda sold: f"/admin/inventory/product/{sold.lines.first().product_id}/restock/",
    "csv import": lambda sold: "/admin/inventory/product/import/",
    "redrive": lambda sold: f"/admin/orders/order/{failed_order().pk}/action/redrive/",
    "refund": lambda sold: f"/admin/orders/order/{sold.pk}/refund/",
    "cancel": lambda sold: f"/admin/orders/order/{failed_order().pk}/action/cancel/",
    "ledger": lambda sold: "/admin/inventory/stockmovement/",
    "home": lambda sold: "/admin/",
}


@pytest.mark.parametrize("name", WORK_PAGES)
def test_a_page_staff_work_in_has_no_serious_accessibility_violation(live_server, a_shop_with_history, name):
    url = WORK_PAGES[name](a_shop_with_history)
    with chromium_page() as page:
        log_in(page, live_server.url)
        response = page.goto(live_server.url + url)
        assert response.status == 200, (url, response.status)
        keep(page, f"axe-{name}")
        assert_no_serious_axe_violations(page)
