"""The shopper's order page, in Debian's Chromium against the real API: what it says after
the order ended (refunded, cancelled, rejected), what it says while a step waits for a
provider that is down, and the facts every order page carries.

Screenshots are kept in var/test-artifacts/shop/ beside the other shop page's.
"""

import re
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from backoffice.actions import refund_order
from orders.services import cancel_order
from payments.models import Refund
from tests.support.due_retries import run_due_retries
from tests.support.shop_page import (  # noqa: F401  (_orm_beside_playwright: the page's autouse fixture)
    FINAL_TIMEOUT,
    PHONE,
    _orm_beside_playwright,
    assert_no_serious_axe_violations,
    keep_screenshot,
    shopper_page,
    status,
)

pytestmark = pytest.mark.slow


def test_after_a_partial_refund_the_order_page_shows_what_was_refunded_and_when(
    live_server, make_product, shopper, mailoutbox
):
    make_product("MUG-001", price="20.00", on_hand=5, name="Ceramic mug")
    order = shopper.buys({"MUG-001": 2})
    refund_order(
        order, manager="morgan", reason="One mug arrived chipped", refund_reason="damaged", amount=Decimal("12.50")
    )
    refund = Refund.objects.get(order=order)
    assert refund.status == Refund.Status.SUCCEEDED

    email = next(m for m in mailoutbox if m.subject.startswith("A refund for your order"))
    link = re.search(r"Your order: (\S+)", email.body).group(1)
    with shopper_page(PHONE) as page:
        page.goto(live_server.url + urlsplit(link).path)  # the refund email's link

        expect(status(page)).to_have_text("Complete, partly refunded", timeout=FINAL_TIMEOUT)
        refunds = page.locator(".refunds")
        expect(refunds).to_contain_text("$12.50 refunded on")
        expect(refunds).to_contain_text("Damaged")  # the listed reason; the manager's note stays inside
        when = refunds.locator("time")
        assert when.get_attribute("datetime") == refund.updated_at.isoformat().replace("+00:00", "Z")
        expect(when).to_have_text(
            re.compile(rf"{refund.updated_at:%b} {refund.updated_at.day}, {refund.updated_at.year}")
        )
        expect(page.get_by_role("row", name="Total $40.00", exact=True)).to_be_visible()
        expect(page.get_by_role("row", name="Refunded")).to_contain_text("$12.50")
        expect(page.get_by_test_id("net-paid")).to_have_text("$27.50")
        assert_no_serious_axe_violations(page)
        keep_screenshot(page, "phone-order-partly-refunded")


def test_an_order_refused_for_stock_names_each_short_item_and_how_many_were_left(
    live_server, make_product, shopper, api
):
    make_product("MUG-001", price="12.50", on_hand=1, name="Ceramic mug")
    make_product("TEE-001", price="19.99", on_hand=0, name="Cotton tee")
    make_product("CAP-001", price="9.00", on_hand=5, name="Canvas cap")
    order = shopper.buys({"MUG-001": 2, "TEE-001": 1, "CAP-001": 1})

    lines = {line["sku"]: line["units_left"] for line in api.get(f"/api/orders/{order.reference}/").json()["lines"]}
    assert lines == {"MUG-001": 1, "TEE-001": 0, "CAP-001": None}
    with shopper_page(PHONE) as page:
        page.goto(f"{live_server.url}/orders/{order.reference}")

        expect(status(page)).to_have_text("Not placed: some items ran out", timeout=FINAL_TIMEOUT)
        short = page.locator(".failure li")
        expect(short).to_have_text(
            ["Ceramic mug: you asked for 2, only 1 left.", "Cotton tee: sold out (you asked for 1)."]
        )
        expect(page.locator(".failure p").first).to_have_text("These items ran out before we could reserve them:")
        expect(page.locator(".failure")).to_contain_text("No payment was taken.")
        assert_no_serious_axe_violations(page)
        keep_screenshot(page, "phone-order-refused-for-stock")


def test_a_cancelled_order_gives_the_reason_as_its_own_sentence_before_what_it_means_for_the_money(
    live_server, make_product, shopper, held_pipeline
):
    make_product("MUG-001", price="12.50", on_hand=5, name="Ceramic mug")
    held_pipeline.hold()
    order = shopper.buys({"MUG-001": 1})  # reserved, its payment not yet taken
    cancel_order(order, reason="Customer asked to cancel", cancelled_by="morgan")

    with shopper_page() as page:
        page.goto(f"{live_server.url}/orders/{order.reference}")

        expect(status(page)).to_have_text("Cancelled", timeout=FINAL_TIMEOUT)
        paragraphs = page.locator(".failure p")
        expect(paragraphs.nth(0)).to_have_text("Customer asked to cancel.")
        expect(paragraphs.nth(1)).to_have_text(
            "You will not be charged: any amount held or taken is released or refunded."
        )
        expect(page.get_by_text("cancel You will")).to_have_count(0)
        keep_screenshot(page, "desktop-order-cancelled")


def test_the_order_page_gives_the_date_it_was_placed_and_labels_each_line_s_total(live_server, make_product, shopper):
    make_product("MUG-001", price="12.50", on_hand=5, name="Ceramic mug")
    order = shopper.buys({"MUG-001": 2})

    with shopper_page() as page:
        page.goto(f"{live_server.url}/orders/{order.reference}")

        expect(status(page)).to_have_text("Complete", timeout=FINAL_TIMEOUT)
        placed = page.locator(".reference time")
        expect(page.locator(".reference")).to_contain_text("Placed on")
        assert placed.get_attribute("datetime") == order.created_at.isoformat().replace("+00:00", "Z")
        expect(page.get_by_role("columnheader")).to_have_text(["Product", "Quantity", "Line total"])
        expect(page.get_by_role("row", name="Ceramic mug")).to_contain_text("$12.50 each")
        expect(page.get_by_role("row", name="Ceramic mug")).to_contain_text("$25.00")
        keep_screenshot(page, "desktop-order-placed-on")


def test_while_stripe_is_down_the_order_page_says_calmly_that_the_payment_waits_and_moves_on_once_it_is_back(
    live_server, make_product, shopper, fake_stripe, settings
):
    # Stripe answers 503 to every charge: two failures open its breaker, the payment waits.
    settings.BREAKER_FAILURES = 2
    settings.BREAKER_COOL_DOWN_SECONDS = 0.1
    settings.STEP_WAIT_RECHECK_SECONDS = 0.05
    make_product("MUG-001", price="12.50", on_hand=5, name="Ceramic mug")
    fake_stripe.fail_next("create_intent", status=503, times=1_000_000)
    order = shopper.buys({"MUG-001": 1})

    with shopper_page(PHONE) as page:
        page.goto(f"{live_server.url}/orders/{order.reference}")

        expect(status(page)).to_have_text(
            "Your payment is waiting to go through; there is nothing you need to do.", timeout=FINAL_TIMEOUT
        )
        expect(page.get_by_text("Waiting: it goes on shortly, nothing to do")).to_be_visible()
        expect(page.get_by_text(re.compile("fail|error|circuit|stripe", re.IGNORECASE))).to_have_count(0)
        assert_no_serious_axe_violations(page)
        keep_screenshot(page, "phone-order-payment-waiting")

        fake_stripe.faults.clear()  # Stripe is back: the next probe closes the breaker
        run_due_retries()

        expect(status(page)).to_have_text("Complete", timeout=FINAL_TIMEOUT)
        expect(page.get_by_text("Waiting: it goes on shortly, nothing to do")).to_have_count(0)
        keep_screenshot(page, "phone-order-payment-went-through")
    assert len(fake_stripe.intents_for(order.reference)) == 1
