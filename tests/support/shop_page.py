"""Driving the shop page in Chromium: viewports, screenshots kept as artifacts, axe scans,
and the steps a shopper takes (add to cart, fill the checkout)."""

import contextlib
import json
import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from inventory.models import Product, StockMovement
from inventory.services import adjust_stock
from tests.support.browser import chromium_page
from tests.support.fake_stripe import FakeStripe
from tests.support.stripe_js import PUBLISHABLE_KEY, bank_challenge, route_stripe_js

PROJECT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR") or PROJECT / "var" / "test-artifacts") / "shop"
AXE = PROJECT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
DIST = PROJECT / "frontend" / "dist"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
FINAL_TIMEOUT = 20_000
# deploy/production.env's choices for the shop page, beside Stripe's secrets: debug off (so
# every production setting must be given), Stripe with a publishable key (the page collects
# cards with Stripe.js, under the policy that lets it in), no simulated faults. Not its HTTPS
# settings: no TLS proxy in the tests.
PRODUCTION_PAGE_ENV = {
    "DJANGO_DEBUG": "false",
    "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
    "PAYMENT_SIMULATED_FAULTS": "false",
}
# Stripe's test card that asks for 3-D Secure 2 (pm_card_threeDSecure2Required).
CARD_ASKING_FOR_3D_SECURE = "4000 0027 6000 3184"


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; Django's async-safety check
    # would otherwise refuse the test's own ORM calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@contextlib.contextmanager
def shopper_page(viewport=DESKTOP):
    """A fresh page in Debian's Chromium, as a shopper's desktop or phone shows it, under the
    page's own policy (tests/support/browser.py: a refusal fails the test)."""
    with chromium_page(viewport, phone=viewport["width"] < 600) as page:
        yield page


def serve_built_assets(page) -> None:
    """Answer the page's /static/assets/ requests from frontend/dist, the files `collectstatic`
    would copy: the processes a test starts have a STATIC_ROOT of their own, and collecting
    into it takes a minute here. The page still loads them from its own origin, under its policy."""

    def from_dist(route):
        route.fulfill(path=str(DIST / route.request.url.split("/static/")[1]))

    page.route("**/static/assets/**", from_dist)


def keep_screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def assert_no_serious_axe_violations(page) -> None:
    # Evaluated through the DevTools protocol, not added as a <script>: the page's policy
    # rightly refuses an inline script, and the scan must not need the policy bypassed.
    page.evaluate(f"() => {{ {AXE.read_text()}\n }}")
    result = page.evaluate("async () => JSON.stringify(await axe.run(document))")
    serious = [v for v in json.loads(result)["violations"] if v["impact"] in ("serious", "critical")]
    assert not serious, [(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in serious]


def tab_to(page, locator, *, presses: int = 60) -> None:
    """Move focus with the Tab key alone until it reaches `locator` (proves it is in the focus order)."""
    for _ in range(presses):
        if locator.evaluate("element => element === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{locator} not reached with Tab")


def status(page):
    return page.get_by_role("status")


def add_to_cart(page, name: str, times: int = 1) -> None:
    for _ in range(times):
        page.get_by_role("button", name=f"Add to cart: {name}").click()


def fill_checkout(page, email="shopper@example.com", method: str | None = None) -> None:
    page.get_by_label("Email for your receipt").fill(email)
    if method:
        page.get_by_label(method, exact=True).check()


def others_take(sku: str, units: int) -> None:
    """Units sold elsewhere while the shopper's page is open."""
    adjust_stock(product=Product.objects.get(sku=sku), delta=-units, reason=StockMovement.Reason.ADJUSTMENT, note="")


def ready_to_pay(page, shop_url: str, product: str) -> None:
    """The shop open with one product in the cart and the checkout filled in."""
    page.goto(shop_url + "/")
    add_to_cart(page, product)
    fill_checkout(page)


def place_order_button(page):
    return page.get_by_role("button", name="Place order")


def buy_by_card_through_3d_secure(page, fake_stripe: FakeStripe, shop_url: str, product: str, *, name: str) -> bytes:
    """A shopper buys `product` at `shop_url` with the card that asks for 3-D Secure, completes
    the bank's challenge, waits for the order to say Complete and downloads its receipt from
    the order's page; returns the receipt's bytes. Stripe.js is routed to its stand-in
    (tests/support/stripe_js.py) under the page's own policy; the challenge and the completed
    order are kept as screenshots `<name>-3ds-challenge` and `<name>-3ds-completed`."""
    route_stripe_js(page, fake_stripe, shop_url)
    ready_to_pay(page, shop_url, product)
    page.get_by_label("Card number").fill(CARD_ASKING_FOR_3D_SECURE)
    place_order_button(page).click()
    challenge = page.get_by_role("dialog", name="3D Secure test payment page")
    expect(challenge).to_be_visible(timeout=FINAL_TIMEOUT)
    keep_screenshot(page, f"{name}-3ds-challenge")
    bank_challenge(page).get_by_role("button", name="Complete authentication").click()

    expect(status(page)).to_have_text("Complete", timeout=FINAL_TIMEOUT)
    keep_screenshot(page, f"{name}-3ds-completed")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download your receipt (PDF)").click()
    return Path(download.value.path()).read_bytes()
