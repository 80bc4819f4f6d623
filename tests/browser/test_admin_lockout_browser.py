"""The admin's login lockout as staff meet it, in Debian's Chromium: one person's wrong
passwords lock that person's name from that address, on a page in the admin's design that
says for how long and leads back; everybody else behind the address still logs in.

Screenshots: artifacts/<test>/ (see tests/support/browser.py).
"""

import pytest
from playwright.sync_api import expect

from staff.services import create_staff
from tests.support.admin_client import authenticator_app
from tests.support.browser import chromium_page, save_screenshot, type_second_factor
from tests.support.shop_page import _orm_beside_playwright  # noqa: F401  (the page's autouse fixture)

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only


def try_login(page, url: str, username: str, password: str) -> None:
    page.goto(url + "/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_five_wrong_passwords_lock_that_name_only_on_a_page_that_says_for_how_long_and_leads_back(
    live_server, request, settings
):
    create_staff("kim", "clerk", password=PASSWORD)
    lee = create_staff("lee", "manager", password=PASSWORD, email="lee@shop.example").user
    authenticator_app(lee)

    with chromium_page() as page:
        page.set_viewport_size({"width": 1280, "height": 800})
        for attempt in range(settings.AXES_FAILURE_LIMIT):
            try_login(page, live_server.url, "kim", f"wrong guess {attempt}")

        expect(page.get_by_role("heading", name="Login locked for a while")).to_be_visible()
        lockout = page.get_by_test_id("lockout")
        expect(lockout).to_contain_text("5 wrong passwords in a row for kim from this address")
        expect(lockout).to_contain_text("may not log in from here for 15 min")
        expect(lockout).to_contain_text("manage.py axes_reset_username kim")
        # the admin's header, with the shop's name: its design, not a bare page
        expect(page.locator("#site-name")).to_have_text(f"{settings.SHOP_NAME} back office")
        save_screenshot(page, request.node.name, "1-lockout")

        try_login(page, live_server.url, "kim", PASSWORD)
        expect(page.get_by_role("heading", name="Login locked for a while")).to_be_visible()

        page.get_by_role("link", name="Back to the login page").click()
        expect(page.get_by_role("button", name="Log in")).to_be_visible()
        try_login(page, live_server.url, "lee", PASSWORD)  # same address, another member of staff
        type_second_factor(page, lee)
        expect(page.get_by_text("Orders needing attention")).to_be_visible()
        save_screenshot(page, request.node.name, "2-colleague-logs-in")
