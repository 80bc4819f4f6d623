"""The Content-Security-Policy: on every page, and the shop page, the admin and Swagger UI
all work under it in Chromium with no violation reported by the browser. With the
production settings, the shop page lets Stripe.js in exactly as far as Stripe documents
when a publishable key is set, and no further; no other page does."""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from orders.models import Order
from tests.support.admin_client import authenticator_app
from tests.support.browser import chromium_page, type_second_factor
from tests.support.settings_probe import in_fresh_process, production_environment
from tests.support.shop_page import FINAL_TIMEOUT, add_to_cart, fill_checkout, place_order_button, status

pytestmark = pytest.mark.slow

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", settings.BASE_DIR / "var" / "test-artifacts"))
PASSWORD = "correct horse battery staple"
# Stripe's integration security guide: what a page that loads Stripe.js must allow.
STRIPE_JS = {
    "script-src": {"https://js.stripe.com"},
    "frame-src": {"https://js.stripe.com", "https://hooks.stripe.com"},
    "connect-src": {"https://api.stripe.com"},
}
# The pages a fresh process serves without a database or collected static files: the shop
# page (at / and at an order's address) and one that is not; asked the way nginx asks.
SERVED = (
    "from django.test import Client\n"
    "client = Client(HTTP_HOST='shop.example.com', HTTP_X_FORWARDED_PROTO='https')\n"
    "result = {path: client.get(path)['Content-Security-Policy'] for path in ('/', '/orders/ord_x', '/health/live')}"
)


def directives(policy: str) -> dict[str, set[str]]:
    """The policy as {directive: its sources}."""
    parts = [part.split() for part in policy.split(";") if part.strip()]
    return {name: set(sources) for name, *sources in parts}


def policies_served(tmp_path, **changes: str) -> dict[str, dict[str, set[str]]]:
    """The policy of the shop page, an order's page and /health/live, as the production
    settings (deploy/production.env) with `changes` serve them."""
    environ = {**production_environment(), **changes}
    return {path: directives(policy) for path, policy in in_fresh_process(tmp_path, environ, SERVED).items()}


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def watched_page():
    """A Chromium page under the policy, whose refusals fail the test (tests/support/browser.py)."""
    with chromium_page() as page:
        yield page


def violations(page) -> list[str]:
    return page.policy_violations


def keep_screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"csp-{name}.png"), full_page=True)


@pytest.mark.parametrize("path", ["/", "/admin/login/", "/api/docs/", "/api/products/"])
def test_every_page_carries_the_policy(client, db, path):
    policy = client.get(path)["Content-Security-Policy"]

    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in policy


def test_with_a_publishable_key_the_shop_page_lets_in_stripe_js_as_stripe_documents_and_nothing_more(tmp_path):
    served = policies_served(tmp_path)  # production.env sets a live publishable key
    site_wide, shop_page = served["/health/live"], served["/"]

    assert served["/orders/ord_x"] == shop_page
    for directive, stripe_sources in STRIPE_JS.items():
        assert shop_page[directive] == site_wide.get(directive, set()) | stripe_sources, directive
    others = set(shop_page) - set(STRIPE_JS)
    assert {name: shop_page[name] for name in others} == {name: site_wide[name] for name in others}
    assert set(site_wide) == others | {"script-src", "connect-src"}  # no frame-src anywhere else
    assert site_wide["script-src"] == site_wide["connect-src"] == {"'self'"}


def test_without_a_publishable_key_the_shop_page_keeps_the_strict_policy(tmp_path):
    served = policies_served(tmp_path, STRIPE_SECRET_KEY="sk_test_" + "x" * 24, STRIPE_PUBLISHABLE_KEY="")

    assert served["/"] == served["/orders/ord_x"] == served["/health/live"]
    assert served["/"]["script-src"] == served["/"]["connect-src"] == served["/"]["default-src"] == {"'self'"}
    assert "frame-src" not in served["/"]
    assert not any("stripe" in source for sources in served["/"].values() for source in sources)


@pytest.mark.parametrize("path", ["/admin/login/", "/api/docs/", "/api/products/"])
def test_no_page_but_the_shop_page_lets_in_stripe_js(client, db, settings, path):
    settings.PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_" + "x" * 24

    assert "stripe" in client.get("/")["Content-Security-Policy"]
    assert "stripe" not in client.get(path)["Content-Security-Policy"]


def test_a_browser_test_fails_when_the_browser_refuses_anything(live_server, transactional_db):
    refused = "script-src-elem refused https://scripts.example/track.js"
    with pytest.raises(AssertionError, match=refused), chromium_page() as page:
        page.goto(live_server.url + "/api/docs/")
        page.evaluate(
            "() => { const s = document.createElement('script');"
            " s.src = 'https://scripts.example/track.js'; document.head.append(s); }"
        )
        expect(page.get_by_text("Order processing API")).to_be_visible(timeout=15_000)


def test_the_shop_page_places_an_order_under_the_policy(live_server, make_product, watched_page):
    make_product("MUG-001", price="12.50", on_hand=5, name="Ceramic mug")
    page = watched_page

    response = page.goto(live_server.url + "/")
    expect(page.get_by_text("Ceramic mug")).to_be_visible()
    add_to_cart(page, "Ceramic mug")
    fill_checkout(page)
    place_order_button(page).click()
    expect(status(page)).to_have_text("Complete", timeout=FINAL_TIMEOUT)
    keep_screenshot(page, "shop-page")

    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert violations(page) == []
    assert Order.objects.get().state == "COMPLETED"


def test_the_admin_works_under_the_policy(live_server, make_product, watched_page):
    boss = get_user_model().objects.create_superuser("boss", "boss@shop.example", PASSWORD)
    authenticator_app(boss)  # a superuser moves money: the second factor's page comes next
    make_product("MUG-001", on_hand=5, name="Ceramic mug")
    page = watched_page

    page.goto(live_server.url + "/admin/")
    page.get_by_label("Username").fill("boss")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    type_second_factor(page, boss)
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    page.goto(live_server.url + "/admin/inventory/product/")
    expect(page.get_by_role("link", name="MUG-001")).to_be_visible()
    page.get_by_role("link", name="MUG-001").click()
    expect(page.locator("input[name=name]")).to_have_value("Ceramic mug")
    keep_screenshot(page, "admin-product")

    assert violations(page) == []


def test_swagger_ui_works_under_the_policy(live_server, transactional_db, watched_page):
    page = watched_page

    page.goto(live_server.url + "/api/docs/")
    expect(page.get_by_text("Order processing API")).to_be_visible(timeout=15_000)
    page.get_by_text("/api/orders/{reference}/", exact=True).first.click()
    expect(page.get_by_role("button", name="Try it out")).to_be_visible()
    keep_screenshot(page, "swagger-ui")

    assert violations(page) == []
