"""The monitoring page in the admin: what a manager sees, and who may not see it."""

import os
import uuid
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.core.cache import caches
from django.utils import timezone
from django_q.models import Task as QueuedTask
from playwright.sync_api import expect

from monitoring.alarms import evaluate_alarms
from tests.support.browser import chromium_page
from tests.support.processes import PROJECT_DIR

PASSWORD = "correct horse battery staple"
# Screenshots are kept here for a person to look at (CI keeps the folder as an artifact).
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", PROJECT_DIR / "var" / "test-artifacts"))


@pytest.fixture
def staff_user(transactional_db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only

    def make(username: str, *permissions: str) -> User:
        user = User.objects.create_user(username, f"{username}@shop.example", PASSWORD, is_staff=True)
        for permission in permissions:
            app_label, codename = permission.split(".")
            user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        return user

    return make


@pytest.fixture
def a_busy_hour(shopper, make_product, settings):
    """Orders that completed, were declined and failed; a task the cluster gave up on; alarms firing."""
    make_product("MUG-001", on_hand=200, name="Ceramic mug")
    make_product("CAP-003", on_hand=2, name="Cap")
    for _ in range(6):
        shopper.buys({"MUG-001": 1})
    shopper.buys({"MUG-001": 1}, pay_with="pm_card_chargeDeclined")
    failed = shopper.buys({"MUG-001": 1}, pay_with="pm_sim_unavailable")
    QueuedTask.objects.create(
        id=uuid.uuid4().hex,
        name=f"advance_order:{failed.pk}",
        func="orders.tasks.advance_order",
        args=(failed.pk,),
        kwargs={},
        started=timezone.now(),
        stopped=timezone.now(),
        result="OperationalError: the database went away",
        success=False,
    )
    settings.ALARM_MIN_CLUSTERS = 1  # no cluster runs in this test: its alarm fires
    caches["queue_status"].clear()  # the last heartbeat of a cluster an earlier test stopped
    evaluate_alarms()
    return failed


def test_a_manager_sees_the_pipeline_at_a_glance(client, staff_user, a_busy_hour):
    client.force_login(staff_user("mo", "orders.view_monitoring"))

    response = client.get("/admin/monitoring/")

    assert response.status_code == 200
    page = response.content.decode()
    seen = [
        "Orders completed per minute", "<svg", "process_payment", "update_inventory", "Task cluster missing",
        "Stock low", "OperationalError: the database went away", f"/admin/orders/order/{a_busy_hour.pk}/change/",
        "COMPLETED", "PAYMENT_FAILED", "FAILED",
    ]  # fmt: skip
    assert [text for text in seen if text not in page] == []
    assert 'id="monitoring-link"' in page  # the header links the page for those who may see it


def test_the_page_says_who_alarms_email_and_each_firing_who_it_told(client, staff_user, a_busy_hour, settings):
    settings.ALARM_EMAILS = ["oncall@shop.example"]
    client.force_login(staff_user("mo", "orders.view_monitoring", "monitoring.receive_alarms"))

    page = client.get("/admin/monitoring/").content.decode()

    assert "Alarms are emailed to mo@shop.example, oncall@shop.example." in page
    assert '<span class="alert">nobody</span>' in page  # the firings of a_busy_hour found no one to tell


def test_with_nobody_to_email_the_page_says_alarms_reach_nobody_in_red(client, staff_user, a_busy_hour, settings):
    settings.ALARM_EMAILS = []
    client.force_login(staff_user("mo", "orders.view_monitoring"))  # may watch, is not emailed

    page = client.get("/admin/monitoring/").content.decode()

    assert '<span class="alert">Alarms reach nobody:</span>' in page


def test_stock_staff_are_refused_the_page_naming_the_permission(client, staff_user):
    client.force_login(staff_user("sam", "inventory.adjust_stock"))

    response = client.get("/admin/monitoring/")
    assert response.status_code == 403
    assert "orders.view_monitoring" in response.content.decode()
    assert 'id="monitoring-link"' not in client.get("/admin/").content.decode()


def test_the_page_asks_anyone_not_logged_in_to_log_in(client, db):
    response = client.get("/admin/monitoring/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_firings_are_listed_read_only_for_managers(client, staff_user, a_busy_hour):
    client.force_login(staff_user("mo", "orders.view_monitoring"))

    response = client.get("/admin/monitoring/alarmfiring/")

    assert response.status_code == 200
    assert "Task cluster missing" in response.content.decode()
    assert "Add alarm firing" not in response.content.decode()


@pytest.mark.slow
def test_the_page_renders_in_a_browser_for_a_manager(live_server, staff_user, a_busy_hour, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop runs in this thread
    staff_user("mo", "orders.view_monitoring")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    with chromium_page() as page:
        page.set_viewport_size({"width": 1280, "height": 1000})
        page.goto(live_server.url + "/admin/login/?next=/admin/monitoring/")
        page.get_by_label("Username").fill("mo")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()

        expect(page.get_by_role("heading", name="Monitoring")).to_be_visible()
        expect(page.locator("#alarms")).to_contain_text("Task cluster missing")
        expect(page.locator("#steps")).to_contain_text("process_payment")
        expect(page.locator("#alarm-recipients")).to_contain_text("Alarms reach nobody")  # mo is not emailed
        page.screenshot(path=ARTIFACTS / "monitoring-page.png", full_page=True)
