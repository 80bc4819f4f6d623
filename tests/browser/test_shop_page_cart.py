"""The shop page's cart and checkout, in Debian's Chromium against the real API: one currency
per cart, one count that matches the subtotal, a phone's way from "Add to cart" to the
checkout, and payment choices that line up.

Screenshots are kept in var/test-artifacts/shop/ beside the other shop page's.
"""

import json

import pytest
from playwright.sync_api import expect

from tests.support.shop_page import (  # noqa: F401  (_orm_beside_playwright: the page's autouse fixture)
    ARTIFACTS,
    PHONE,
    _orm_beside_playwright,
    add_to_cart,
    assert_no_serious_axe_violations,
    keep_screenshot,
    others_take,
    shopper_page,
)

pytestmark = pytest.mark.slow


def cart_heading(page):
    return page.get_by_role("heading", name="Your cart")


def test_a_product_in_another_currency_cannot_join_the_cart_and_the_total_never_adds_two_currencies(
    live_server, make_product
):
    make_product("MUG-001", price="15.00", currency="USD", name="Ceramic mug")
    make_product("MUG-EUR", price="10.00", currency="EUR", name="Euro mug")

    with shopper_page() as page:
        page.goto(live_server.url + "/")
        add_to_cart(page, "Ceramic mug")
        euro_mug = page.locator(".product[data-sku=MUG-EUR]")
        expect(euro_mug.get_by_role("button", name="Add to cart: Euro mug")).to_be_disabled()
        expect(euro_mug).to_contain_text("Priced in EUR; your cart is paid in USD.")
        expect(page.get_by_test_id("total")).to_have_text("$15.00")
        keep_screenshot(page, "desktop-cart-other-currency-refused")

        # A cart saved by an older page (or another tab) that holds both: the stray line is
        # marked, left out of the count and the totals, and blocks the order until removed.
        page.evaluate("cart => localStorage.setItem('shop.cart', cart)", json.dumps({"MUG-001": 1, "MUG-EUR": 1}))
        page.reload()
        stray = page.locator(".cart-line[data-sku=MUG-EUR]")
        expect(stray).to_contain_text("Priced in EUR, and your cart is paid in USD.")
        expect(cart_heading(page)).to_have_text("Your cart (1 item)")
        expect(page.get_by_test_id("subtotal")).to_have_text("$15.00")
        expect(page.get_by_test_id("total")).to_have_text("$15.00")
        expect(page.get_by_text("$25.00")).to_have_count(0)
        assert_no_serious_axe_violations(page)
        keep_screenshot(page, "desktop-cart-stray-currency-line")


def test_the_cart_count_and_the_subtotal_count_the_same_units_when_a_line_sells_out(live_server, make_product):
    make_product("MUG-001", price="12.50", on_hand=5, name="Ceramic mug")
    make_product("TEE-001", price="19.99", on_hand=1, name="Cotton tee")

    with shopper_page() as page:
        page.goto(live_server.url + "/")
        add_to_cart(page, "Ceramic mug")
        add_to_cart(page, "Cotton tee")
        expect(cart_heading(page)).to_have_text("Your cart (2 items)")
        others_take("TEE-001", 1)
        page.reload()

        expect(page.locator(".cart-line[data-sku=TEE-001]")).to_contain_text("Sold out")
        expect(cart_heading(page)).to_have_text("Your cart (1 item)")
        expect(page.get_by_test_id("subtotal")).to_have_text("$12.50")
        # The sold-out line shows no amount the subtotal does not add up.
        expect(page.locator(".cart-line[data-sku=TEE-001] .cart-line-total")).to_have_count(0)
        keep_screenshot(page, "desktop-cart-count-with-sold-out-line")


def test_on_a_phone_the_cart_is_one_tap_from_add_to_cart_without_scrolling_past_the_catalog(live_server, make_product):
    for n in range(1, 9):
        make_product(f"ITEM-{n:03}", price="12.50", on_hand=9, name=f"Product number {n}")

    with shopper_page(PHONE) as page:
        page.goto(live_server.url + "/")
        expect(page.get_by_role("navigation", name="Your cart")).to_have_count(0)  # nothing to show yet
        add_to_cart(page, "Product number 1", 2)

        bar = page.get_by_role("navigation", name="Your cart")
        expect(bar).to_be_in_viewport()
        expect(bar).to_contain_text("2 items")
        expect(bar).to_contain_text("$25.00")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "phone-cart-bar.png"))  # the screen as the shopper holds it

        bar.get_by_role("link", name="View cart and check out").click()
        expect(cart_heading(page)).to_be_in_viewport()
        expect(page.get_by_label("Quantity of Product number 1")).to_be_in_viewport()
        page.screenshot(path=str(ARTIFACTS / "phone-cart-bar-tapped.png"))

        # The bar never covers the last thing on the page: the order button can be scrolled clear of it.
        place = page.get_by_role("button", name="Place order")
        place.scroll_into_view_if_needed()
        page.mouse.wheel(0, 10_000)
        expect(place).to_be_in_viewport()
        bottom_of_button = place.bounding_box()["y"] + place.bounding_box()["height"]
        assert bottom_of_button <= bar.bounding_box()["y"], (bottom_of_button, bar.bounding_box())
        assert_no_serious_axe_violations(page)
        keep_screenshot(page, "phone-cart-with-bar")


def test_payment_choices_with_two_line_labels_line_up_with_the_others(live_server, make_product):
    make_product("MUG-001", price="12.50", name="Ceramic mug")

    with shopper_page(PHONE) as page:
        page.goto(live_server.url + "/")
        add_to_cart(page, "Ceramic mug")
        choices = page.locator(".payment-methods label.radio")
        expect(choices.first).to_be_visible()
        radios = [label.locator("input").bounding_box() for label in choices.all()]
        first_lines = [label.evaluate(LABEL_TEXT_TOP) for label in choices.all()]
        assert len({(round(r["x"]), round(r["width"]), round(r["height"])) for r in radios}) == 1, radios
        # Each radio sits beside its label's first line, however many lines the label takes.
        for radio, text_top in zip(radios, first_lines, strict=True):
            assert abs(radio["y"] - text_top) < 8, (radio, text_top)
        keep_screenshot(page, "phone-payment-choices")


# The top of a label's text (its first line), apart from the radio inside it.
LABEL_TEXT_TOP = """label => {
  const range = document.createRange();
  const text = [...label.childNodes].find((node) => node.nodeType === Node.TEXT_NODE && node.textContent.trim());
  range.selectNodeContents(text);
  return range.getClientRects()[0].top + window.scrollY;
}"""
