"""Driving the shop page in Chromium: viewports, screenshots kept as artifacts, axe scans,
and the steps a shopper takes (add to cart, fill the checkout)."""

import contextlib
import json
import os
from pathlib import Path

import pytest

from inventory.models import Product, StockMovement
from inventory.services import adjust_stock
from tests.support.browser import chromium_page

PROJECT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR") or PROJECT / "var" / "test-artifacts") / "shop"
AXE = PROJECT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
DIST = PROJECT / "frontend" / "dist"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
FINAL_TIMEOUT = 20_000


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
