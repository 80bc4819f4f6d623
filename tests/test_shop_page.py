"""The shopper's React page, in a real browser against the real API."""

import pytest
from playwright.sync_api import expect

from orders.models import Order
from tests.support.browser import chromium_page

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; Django's async-safety check
    # would otherwise refuse the test's own ORM calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def test_a_shopper_places_an_order_on_the_page_and_sees_it_complete_with_a_receipt(live_server, make_product):
    make_product("MUG-001", price="12.50", on_hand=5, name="Ceramic mug")

    with chromium_page() as page:
        page.goto(live_server.url + "/")
        expect(page.get_by_text("Ceramic mug")).to_be_visible()
        page.get_by_label("Quantity of MUG-001").fill("2")
        page.get_by_label("Email").fill("shopper@example.com")
        page.get_by_role("button", name="Place order").click()

        expect(page.get_by_test_id("order-state")).to_have_text("COMPLETED", timeout=20_000)
        expect(page.get_by_role("link", name="Download your receipt (PDF)")).to_be_visible()

    order = Order.objects.get()
    assert order.email == "shopper@example.com"
    assert order.total == 25


def test_the_page_shows_field_errors_and_places_nothing_for_a_bad_email(live_server, make_product):
    make_product("MUG-001", on_hand=5)

    with chromium_page() as page:
        page.goto(live_server.url + "/")
        page.get_by_label("Quantity of MUG-001").fill("1")
        page.get_by_label("Email").fill("not-an-email")
        # The browser's own check would stop a type=email field; send it anyway to see the API's answer.
        page.locator("form").evaluate("form => form.noValidate = true")
        page.get_by_role("button", name="Place order").click()

        expect(page.get_by_role("alert")).to_contain_text("email")

    assert not Order.objects.exists()
