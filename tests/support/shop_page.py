"""Driving the shop page in Chromium: viewports, screenshots kept as artifacts, axe scans,
and the steps a shopper takes (add to cart, fill the checkout)."""

import contextlib
import json
import os
from pathlib import Path

import pytest

from inventory.models import Product, StockMovement
from inventory.services import adjust_stock
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS

PROJECT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR") or PROJECT / "var" / "test-artifacts") / "shop"
AXE = PROJECT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
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
    """A fresh page in Debian's Chromium, as a shopper's desktop or phone shows it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            phone = viewport["width"] < 600
            # bypass_csp: the axe scan is injected as a script, which a strict CSP would refuse.
            context = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone, bypass_csp=True)
            yield context.new_page()
        finally:
            browser.close()


def keep_screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def assert_no_serious_axe_violations(page) -> None:
    # Evaluated through the DevTools protocol, which a page's Content-Security-Policy does not
    # govern: the admin's pages are scanned under their real policy (no bypass_csp).
    page.evaluate(AXE.read_text())
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
