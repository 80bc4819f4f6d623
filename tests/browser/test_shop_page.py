"""The shopper's page, in Debian's Chromium against the real API: a cart, a checkout that
makes one order whatever the network does, an order page that follows the order live.

Screenshots (desktop and a 390 px phone) are kept in var/test-artifacts/shop/ (or
$TEST_ARTIFACTS_DIR/shop/); every page is scanned with axe-core.
"""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from orders.models import Order
from tests.support.shop_page import (  # noqa: F401  (_orm_beside_playwright: the page's autouse fixture)
    FINAL_TIMEOUT,
    PHONE,
    _orm_beside_playwright,
    add_to_cart,
    assert_no_serious_axe_violations,
    fill_checkout,
    keep_screenshot,
    others_take,
    place_order_button,
    ready_to_pay,
    shopper_page,
    status,
    tab_to,
)
from tests.support.stripe_js import PUBLISHABLE_KEY, bank_challenge, route_stripe_js

pytestmark = pytest.mark.slow


def test_a_shopper_fills_a_cart_pays_and_downloads_the_receipt_with_the_keyboard_alone(
    live_server, make_product, settings
):
    from decimal import Decimal

    settings.SHOP_TAX_RATE = Decimal("0.2")
    make_product("MUG-001", price="12.50", on_hand=20, name="Ceramic mug")
    make_product("TEE-001", price="19.99", on_hand=3, name="Cotton tee")
    make_product("CAP-001", price="9.00", on_hand=0, name="Canvas cap")

    with shopper_page() as page:
        page.goto(live_server.url + "/")
        expect(page.get_by_text("Only 3 left")).to_be_visible()
        expect(page.get_by_role("button", name="Sold out: Canvas cap")).to_be_disabled()

        add = page.get_by_role("button", name="Add to cart: Ceramic mug")
        tab_to(page, add)
        page.keyboard.press("Enter")
        page.keyboard.press("Enter")
        tab_to(page, page.get_by_role("button", name="Add to cart: Cotton tee"))
        page.keyboard.press("Enter")
        # 2 x 12.50 + 19.99 = 44.99; tax 20 % = 9.00 (8.998 rounded half up); total 53.99
        expect(page.get_by_test_id("subtotal")).to_have_text("$44.99")
        expect(page.get_by_test_id("tax")).to_have_text("$9.00")
        expect(page.get_by_test_id("total")).to_have_text("$53.99")

        page.reload()  # the cart survives a reload
        expect(page.get_by_test_id("total")).to_have_text("$53.99")
        assert_no_serious_axe_violations(page)
        keep_screenshot(page, "desktop-cart")

        tab_to(page, page.get_by_label("Email for your receipt"))
        page.keyboard.type("shopper@example.com")
        tab_to(page, place_order_button(page))
        page.keyboard.press("Enter")

        expect(status(page)).to_have_text("Complete", timeout=FINAL_TIMEOUT)
        assert page.url.endswith("/orders/" + Order.objects.get().reference)
        receipt = page.get_by_role("link", name="Download your receipt (PDF)")
        tab_to(page, receipt)
        with page.expect_download() as download:
            page.keyboard.press("Enter")
        assert Path(download.value.path()).read_bytes().startswith(b"%PDF")
        expect(page.locator(".step-done")).to_have_count(5)
        assert_no_serious_axe_violations(page)
        keep_screenshot(page, "desktop-order-completed")

        page.goto(live_server.url + "/")  # paid: the cart is empty for the next order
        expect(page.get_by_text("Your cart is empty.")).to_be_visible()

    order = Order.objects.get()
    assert (order.state, order.email, order.total) == ("COMPLETED", "shopper@example.com", Decimal("53.99"))


def test_a_declined_card_says_so_in_plain_words_and_keeps_the_cart(live_server, make_product):
    make_product("MUG-001", price="12.50", on_hand=5, name="Ceramic mug")

    with shopper_page(PHONE) as page:
        page.goto(live_server.url + "/")
        add_to_cart(page, "Ceramic mug", 2)
        fill_checkout(page, method="Card declined")
        place_order_button(page).click()

        expect(status(page)).to_have_text("Payment failed", timeout=FINAL_TIMEOUT)
        failure = page.locator(".failure p")
        expect(failure.nth(0)).to_have_text("Your card was declined.")
        expect(failure.nth(1)).to_have_text("No payment was taken.")
        expect(page.get_by_text("refund_or_void")).to_have_count(0)
        keep_screenshot(page, "phone-order-declined")
        assert_no_serious_axe_violations(page)

        page.get_by_role("link", name="Back to your cart").click()
        expect(page.get_by_label("Quantity of Ceramic mug")).to_have_value("2")

    assert Order.objects.get().state == "PAYMENT_FAILED"


def test_short_and_sold_out_lines_are_marked_in_the_cart_with_what_is_left_offered(live_server, make_product):
    make_product("MUG-001", price="12.50", on_hand=3, name="Ceramic mug")
    make_product("TEE-001", price="19.99", on_hand=1, name="Cotton tee")

    with shopper_page(PHONE) as page:
        page.goto(live_server.url + "/")
        add_to_cart(page, "Ceramic mug", 3)
        add_to_cart(page, "Cotton tee")
        # Others buy meanwhile: two mugs, and the last tee.
        others_take("MUG-001", 2)
        others_take("TEE-001", 1)
        page.reload()

        mug = page.locator(".cart-line[data-sku=MUG-001]")
        tee = page.locator(".cart-line[data-sku=TEE-001]")
        expect(mug).to_contain_text("Only 1 left.")
        expect(tee).to_contain_text("Sold out. Remove it to place your order.")
        fill_checkout(page)
        place_order_button(page).click()
        expect(page.get_by_role("alert").filter(has_text="Cotton tee: Sold out")).to_be_visible()
        keep_screenshot(page, "phone-cart-short-and-sold-out")
        assert_no_serious_axe_violations(page)

        mug.get_by_role("button", name="Change to 1").click()
        tee.get_by_role("button", name="Remove Cotton tee").click()
        expect(page.get_by_label("Quantity of Ceramic mug")).to_have_value("1")
        expect(page.get_by_test_id("total")).to_have_text("$12.50")
        place_order_button(page).click()
        expect(status(page)).to_have_text("Complete", timeout=FINAL_TIMEOUT)

    assert [(o.state, o.total) for o in Order.objects.all()] == [("COMPLETED", 12.5)]


def test_an_order_rejected_for_stock_gone_since_the_page_loaded_marks_the_short_line(live_server, make_product):
    make_product("MUG-001", price="12.50", on_hand=2, name="Ceramic mug")

    with shopper_page() as page:
        page.goto(live_server.url + "/")
        add_to_cart(page, "Ceramic mug", 2)
        others_take("MUG-001", 1)
        fill_checkout(page)
        place_order_button(page).click()

        expect(status(page)).to_have_text("Not placed: some items ran out", timeout=FINAL_TIMEOUT)
        page.get_by_role("link", name="Back to your cart").click()
        expect(page.locator(".cart-line[data-sku=MUG-001]")).to_contain_text("Only 1 left.")
        page.get_by_role("button", name="Change to 1").click()
        expect(page.get_by_label("Quantity of Ceramic mug")).to_have_value("1")


def test_a_double_click_on_place_order_makes_one_order(live_server, make_product):
    make_product("MUG-001", on_hand=5, name="Ceramic mug")

    with shopper_page() as page:
        ready_to_pay(page, live_server.url, "Ceramic mug")
        place_order_button(page).dblclick()
        expect(status(page)).to_have_text("Complete", timeout=FINAL_TIMEOUT)

    assert Order.objects.count() == 1


def test_an_answer_lost_to_the_network_then_a_retry_makes_one_order(live_server, make_product):
    make_product("MUG-001", on_hand=5, name="Ceramic mug")

    with shopper_page() as page:
        ready_to_pay(page, live_server.url, "Ceramic mug")

        def lose_the_answer(route):
            route.fetch()  # the order reaches the shop...
            route.abort("connectionreset")  # ...and its answer never comes back

        page.route("**/api/orders/", lose_the_answer)
        place_order_button(page).click()
        expect(page.get_by_role("alert")).to_contain_text("We couldn't reach the shop")
        expect(place_order_button(page)).to_be_enabled()
        keep_screenshot(page, "desktop-placement-network-error")
        page.unroute("**/api/orders/")

        place_order_button(page).click()
        expect(status(page)).to_have_text("Complete", timeout=FINAL_TIMEOUT)

    assert Order.objects.count() == 1


def test_the_order_page_rides_out_a_network_cut_and_shows_the_order_complete(live_server, make_product, held_pipeline):
    make_product("MUG-001", on_hand=5, name="Ceramic mug")

    with shopper_page(PHONE) as page:
        ready_to_pay(page, live_server.url, "Ceramic mug")
        place_order_button(page).click()
        expect(status(page)).to_have_text("Items reserved, taking payment")
        expect(page.locator(".step-current")).to_contain_text("Payment authorised")

        page.route("**/api/orders/*/", lambda route: route.abort("internetdisconnected"))
        expect(page.get_by_role("alert")).to_contain_text("Connection lost", timeout=10_000)
        keep_screenshot(page, "phone-order-connection-lost")
        order = Order.objects.get()
        held_pipeline.run_by_hand(order, "process_payment", "update_inventory", "generate_receipt", "send_notification")
        page.unroute("**/api/orders/*/")

        # The poll backs off (1 s, 2 s ...) but keeps going: the page recovers by itself.
        expect(status(page)).to_have_text("Complete", timeout=FINAL_TIMEOUT)
        expect(page.get_by_role("alert")).to_have_count(0)
        keep_screenshot(page, "phone-order-completed")


def test_the_email_link_opens_the_order_page_after_a_reload(live_server, shopper, make_product):
    make_product("MUG-001", on_hand=5, name="Ceramic mug")
    order = shopper.buys({"MUG-001": 1})

    with shopper_page(PHONE) as page:
        page.goto(f"{live_server.url}/orders/{order.reference}")
        expect(status(page)).to_have_text("Complete")
        expect(page.get_by_role("cell", name="Ceramic mug")).to_be_visible()
        expect(page.get_by_role("heading", name="Your order")).to_be_focused()
        page.goto(f"{live_server.url}/orders/ord_nobody")
        expect(page.get_by_text("We can't find this order.")).to_be_visible()


def test_a_card_that_asks_for_3d_secure_is_authenticated_on_a_phone_and_the_order_completes(
    live_server, make_product, fake_stripe, settings
):
    settings.STRIPE_PUBLISHABLE_KEY = PUBLISHABLE_KEY
    make_product("MUG-001", price="12.50", on_hand=5, name="Ceramic mug")

    with shopper_page(PHONE) as page:
        route_stripe_js(page, fake_stripe, live_server.url)
        page.goto(live_server.url + "/")
        add = page.get_by_role("button", name="Add to cart: Ceramic mug")
        tab_to(page, add)
        page.keyboard.press("Enter")
        tab_to(page, page.get_by_label("Email for your receipt"))
        page.keyboard.type("shopper@example.com")
        tab_to(page, page.get_by_label("Card number"))
        page.keyboard.type("4000 0027 6000 3184")  # Stripe's test card that asks for 3-D Secure 2
        keep_screenshot(page, "phone-checkout-card")
        page.keyboard.press("Enter")  # submits the form

        challenge = page.get_by_role("dialog", name="3D Secure test payment page")
        expect(challenge).to_be_visible(timeout=FINAL_TIMEOUT)
        expect(status(page)).to_have_text("Waiting for you to confirm the payment with your bank")
        keep_screenshot(page, "phone-3ds-challenge")
        tab_to(page, bank_challenge(page).get_by_role("button", name="Complete authentication"))
        page.keyboard.press("Enter")

        expect(status(page)).to_have_text("Complete", timeout=FINAL_TIMEOUT)
        expect(page.get_by_role("link", name="Download your receipt (PDF)")).to_be_visible()
        keep_screenshot(page, "phone-3ds-completed")

    order = Order.objects.get()
    assert order.state == "COMPLETED"
    assert order.payment_method == "pm_card_threeDSecure2Required"


def test_a_failed_3d_secure_check_says_no_money_was_taken(live_server, make_product, fake_stripe, settings):
    settings.STRIPE_PUBLISHABLE_KEY = PUBLISHABLE_KEY
    make_product("MUG-001", on_hand=5, name="Ceramic mug")

    with shopper_page() as page:
        route_stripe_js(page, fake_stripe, live_server.url)
        ready_to_pay(page, live_server.url, "Ceramic mug")
        page.get_by_label("Card number").fill("4000002760003184")
        place_order_button(page).click()
        bank_challenge(page).get_by_role("button", name="Fail authentication").click()

        expect(status(page)).to_have_text("Payment failed", timeout=FINAL_TIMEOUT)
        failure = page.locator(".failure p")
        expect(failure.nth(0)).to_have_text("We could not authenticate your payment method.")
        expect(failure.nth(1)).to_have_text("No payment was taken.")
        keep_screenshot(page, "desktop-3ds-failed")

    assert Order.objects.get().state == "PAYMENT_FAILED"


def test_a_shopper_asking_for_more_than_one_client_may_hold_unpaid_is_told_on_the_line(
    live_server, make_product, settings
):
    settings.SHOP_MAX_UNPAID_SHARE = 0.5
    make_product("MUG-001", price="12.50", on_hand=20, name="Ceramic mug")

    with shopper_page() as page:
        page.goto(live_server.url + "/")
        add_to_cart(page, "Ceramic mug", 20)
        fill_checkout(page)
        place_order_button(page).click()

        mug = page.locator(".cart-line[data-sku=MUG-001]")
        expect(mug).to_contain_text("You can hold at most 10 of Ceramic mug until your payment goes through")
        keep_screenshot(page, "desktop-cart-unpaid-share")
        assert Order.objects.count() == 0  # nothing written
        page.get_by_label("Quantity of Ceramic mug").fill("10")
        place_order_button(page).click()
        expect(status(page)).to_have_text("Complete", timeout=FINAL_TIMEOUT)

    assert [(o.state, o.total) for o in Order.objects.all()] == [("COMPLETED", 125)]
