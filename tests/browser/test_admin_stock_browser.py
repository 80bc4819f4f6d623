"""A stock clerk's morning in the admin, in Debian's Chromium: find what is low, restock it, see the ledger.

Screenshots of each step: artifacts/<test>/ (see tests/browser.py).
"""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from inventory.models import StockMovement
from staff.services import create_staff
from tests.support.admin_client import authenticator_app
from tests.support.browser import chromium_page, save_screenshot, type_second_factor
from tests.support.catalog import HEADER
from tests.support.invariants import assert_stock_invariants, stock_of

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch, settings):
    # Playwright's sync API runs an event loop in this thread; Django's async-safety check
    # would otherwise refuse the test's own ORM calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only


def log_in(page, url: str, username: str = "kim") -> None:
    """Open an admin page on a laptop-sized window and log in on the form it sends the visitor to."""
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(url)
    clerk = get_user_model().objects.get(username=username)
    authenticator_app(clerk)  # a clerk sets prices: the second factor's page comes next
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    type_second_factor(page, clerk)


def test_a_clerk_finds_a_low_product_restocks_it_and_sees_the_ledger_line(live_server, make_product, request):
    make_product("MUG-001", on_hand=2, name="Ceramic mug")
    make_product("CAP-RED", on_hand=40, name="Red cap")
    create_staff("kim", "clerk", password=PASSWORD)

    def shot(step: str):
        save_screenshot(page, request.node.name, step)

    with chromium_page() as page:
        log_in(page, live_server.url + "/admin/")
        page.get_by_role("link", name="Products").first.click()
        expect(page.get_by_role("cell", name="2 low")).to_be_visible()
        shot("1-product-list")

        page.get_by_role("link", name="Low on stock").click()
        rows = page.locator("#result_list tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("MUG-001")
        shot("2-low-on-stock")

        rows.first.get_by_role("link", name="Restock").click()
        expect(page.get_by_role("heading", name="Restock MUG-001")).to_be_visible()
        page.get_by_label("Units received").fill("24")
        page.get_by_label("Reason").fill("delivery 4711")
        shot("3-restock-form")
        page.get_by_role("button", name="Restock").click()

        expect(page.get_by_text("MUG-001: +24 units (delivery 4711). Now 26 on hand, 26 available.")).to_be_visible()
        expect(page.get_by_role("heading", name="Ledger of MUG-001 Ceramic mug")).to_be_visible()
        newest = page.locator("#result_list tbody tr").first
        expect(newest).to_contain_text("+24")
        expect(newest).to_contain_text("Restock")
        expect(newest).to_contain_text("delivery 4711")
        expect(newest).to_contain_text("kim")
        shot("4-ledger")

    assert stock_of("MUG-001").on_hand == 26
    assert StockMovement.objects.filter(product__sku="MUG-001").first().user.username == "kim"
    assert_stock_invariants()


def test_a_clerk_previews_a_stock_file_fixes_the_bad_row_and_imports_it(live_server, make_product, request, tmp_path):
    make_product("MUG-001", on_hand=2, name="Ceramic mug")
    create_staff("kim", "clerk", password=PASSWORD)
    bad, good = tmp_path / "bad.csv", tmp_path / "good.csv"
    bad.write_text(HEADER + "MUG-001,Ceramic mug,12.50,USD,30\nCAP-RED,Red cap,fifteen,USD,5\n", encoding="utf-8")
    good.write_text(HEADER + "MUG-001,Ceramic mug,12.50,USD,30\nCAP-RED,Red cap,15.00,USD,5\n", encoding="utf-8")

    with chromium_page() as page:
        log_in(page, live_server.url + "/admin/inventory/product/import/")

        page.get_by_label("CSV file").set_input_files(bad)
        page.get_by_role("button", name="Preview").click()
        expect(page.get_by_test_id("import-errors")).to_contain_text("CAP-RED: price 'fifteen' is not a number")
        expect(page.get_by_role("button", name="Import")).to_have_count(0)
        save_screenshot(page, request.node.name, "1-bad-row")

        page.get_by_label("CSV file").set_input_files(good)
        page.get_by_role("button", name="Preview").click()
        expect(page.get_by_test_id("import-preview")).to_contain_text("on hand: 2 → 30 (+28)")
        save_screenshot(page, request.node.name, "2-preview")
        assert stock_of("MUG-001").on_hand == 2  # the preview wrote nothing

        page.get_by_role("button", name="Import 2 rows").click()
        expect(page.get_by_text("Imported good.csv: 1 product created, 1 updated, 0 unchanged.")).to_be_visible()
        save_screenshot(page, request.node.name, "3-imported")

    assert (stock_of("MUG-001").on_hand, stock_of("CAP-RED").on_hand) == (30, 5)
    assert_stock_invariants()
