"""Setting up two-factor login as an Order manager meets it, in Debian's Chromium: after the
password, a page with a QR code and its key; the app's code; the recovery codes, once; then
the back office.

Screenshots: artifacts/<test>/ (see tests/support/browser.py).
"""

import base64

import pytest
from django_otp.oath import totp
from playwright.sync_api import expect

from staff.services import create_staff
from tests.support.browser import chromium_page, save_screenshot
from tests.support.shop_page import _orm_beside_playwright  # noqa: F401  (the page's autouse fixture)

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"


def test_a_manager_sets_up_an_authenticator_app_on_first_login_and_keeps_the_recovery_codes(
    live_server, request, settings
):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only
    create_staff("lee", "manager", password=PASSWORD, email="lee@shop.example")

    with chromium_page() as page:
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(live_server.url + "/admin/login/?next=/admin/")
        page.get_by_label("Username").fill("lee")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()

        expect(page.get_by_role("heading", name="Set up two-factor login")).to_be_visible()
        qr = page.get_by_test_id("qr")
        expect(qr).to_be_visible()
        # Visible is the <img> laid out; loaded is its picture fetched and decoded (a deadline).
        page.wait_for_function(
            "() => { const i = document.querySelector('[data-testid=qr]'); return i.complete && i.naturalWidth > 0 }",
            timeout=15_000,
        )
        save_screenshot(page, request.node.name, "1-enrolment")

        key = page.get_by_test_id("key").inner_text()
        page.get_by_label("Code").fill(f"{totp(base64.b32decode(key)):06d}")
        page.get_by_role("button", name="Confirm and show my recovery codes").click()

        expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
        expect(page.get_by_test_id("recovery-codes").locator("li")).to_have_count(10)
        save_screenshot(page, request.node.name, "2-recovery-codes")

        page.get_by_role("link", name="I have kept them, continue").click()
        expect(page.get_by_text("Orders needing attention")).to_be_visible()
        save_screenshot(page, request.node.name, "3-back-office")
