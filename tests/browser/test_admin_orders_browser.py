"""A manager's day in the order back office, in a real browser (Debian's Chromium) against
the live app, with the shopper's emails going through a real SMTP server (aiosmtpd).

Screenshots of each page are kept under var/test-artifacts/<test>/ to be looked at.
"""

import re
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from orders.models import Notification, Order
from payments.models import SimulatedPaymentIntent
from receipts.models import Receipt
from tests.support.admin_client import authenticator_app
from tests.support.browser import chromium_page, type_second_factor
from tests.support.invariants import stock_of
from tests.support.processes import PROJECT_DIR

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("stock_invariants_hold")]

ARTIFACTS = PROJECT_DIR / "var" / "test-artifacts"
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; Django's async-safety check
    # would otherwise refuse the test's own ORM calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def screenshots(request):
    """Save a full-page screenshot as NN-name.png in this test's artifact folder."""
    folder = ARTIFACTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    taken = []

    def shoot(page, name: str) -> Path:
        path = folder / f"{len(taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        taken.append(path)
        return path

    return shoot


@pytest.fixture
def manager_login(live_server, settings, transactional_db):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only
    morgan = User.objects.create_superuser("morgan", "morgan@shop.example", PASSWORD)
    authenticator_app(morgan)  # enrolled before: the enrolment page has its own test

    def login(page):
        page.goto(live_server.url + "/admin/login/?next=/admin/")
        page.get_by_label("Username").fill("morgan")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        type_second_factor(page, morgan)
        expect(page.get_by_text(re.compile("^Orders? needing attention$"))).to_be_visible()

    return login


def wait_for(condition, *, within: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + within
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return result


def test_a_manager_finds_a_failed_order_and_redrives_it_once_the_gateway_is_back(
    live_server, manager_login, make_product, shopper, smtp_server, settings, screenshots
):
    make_product("MUG-001", price="12.50", on_hand=5, name="Ceramic mug")
    order = shopper.buys({"MUG-001": 2}, pay_with="pm_sim_unavailable")  # the provider is down
    order.refresh_from_db()
    assert order.state == "FAILED"

    with chromium_page() as page:
        page.set_viewport_size({"width": 1400, "height": 900})
        manager_login(page)
        tile = page.locator('[data-testid="tile"]', has_text="needing attention")
        expect(tile).to_contain_text("1")
        screenshots(page, "home-tiles")
        tile.click()
        page.get_by_role("link", name=order.reference).click()
        expect(page.locator('[data-state="FAILED"][data-current]')).to_be_visible()
        screenshots(page, "failed-order-timeline")

        settings.SIMULATED_GATEWAY_OUTAGE = False  # the provider is back
        page.get_by_role("link", name="Redrive from the failed step…").click()
        expect(page.get_by_test_id("planned-steps")).to_contain_text("not run again")
        expect(page.get_by_text("A new authorisation of 25.00 USD")).to_be_visible()
        page.get_by_label("Reason").fill("Payment provider outage is over")
        screenshots(page, "redrive-confirmation")
        page.get_by_role("button", name="Redrive").dblclick()  # an impatient double click

        # The browser shows the answer to the post it navigated to last: the redrive's, or the
        # second post's, which found the first one's token and names who redrove it and when.
        redriven = page.get_by_text(f"Order {order.reference} redriven from process_payment (redrive #1).")
        already = page.get_by_text(
            re.compile(rf"Order {order.reference}: already done by morgan at [0-9: -]+; nothing more was done\.")
        )
        expect(redriven.or_(already)).to_be_visible()
        wait_for(lambda: Order.objects.filter(pk=order.pk, state="COMPLETED").exists(), what="the order completed")
        page.reload()
        expect(page.locator('[data-state="COMPLETED"][data-current]')).to_be_visible()
        expect(page.locator('[data-move="FAILED-VALIDATED"]')).to_be_attached()
        screenshots(page, "redriven-order-completed")

    order.refresh_from_db()
    assert (order.state, order.redrive_count) == ("COMPLETED", 1)
    assert SimulatedPaymentIntent.objects.filter(status="succeeded").count() == 1  # one charge
    assert SimulatedPaymentIntent.objects.filter(status="requires_capture").count() == 0
    assert Receipt.objects.filter(order=order, stored_at__isnull=False).count() == 1  # one receipt
    confirmations = wait_for(
        lambda: [m for m in smtp_server.received if m.subject == f"Your order {order.reference} is confirmed"],
        what="the confirmation email",
    )
    assert len(confirmations) == 1  # one confirmation email (the failure email went before the redrive)
    assert [m.subject for m in smtp_server.received] == [
        f"We could not process your order {order.reference}",
        f"Your order {order.reference} is confirmed",
    ]
    assert Notification.objects.filter(order=order, kind="confirmation").count() == 1


def test_a_manager_refunds_part_of_an_order_puts_a_unit_back_and_the_shopper_is_emailed(
    live_server, manager_login, make_product, shopper, smtp_server, screenshots
):
    make_product("MUG-001", price="12.50", on_hand=5, name="Ceramic mug")
    order = shopper.buys({"MUG-001": 2})
    assert Order.objects.get(pk=order.pk).state == "COMPLETED"

    with chromium_page() as page:
        page.set_viewport_size({"width": 1400, "height": 900})
        manager_login(page)
        page.goto(f"{live_server.url}/admin/orders/order/?q={order.reference}")
        page.get_by_role("link", name=order.reference).click()
        page.get_by_role("link", name="Refund all or part…").click()
        expect(page.get_by_text("Up to 25.00 USD can be refunded")).to_be_visible()
        expect(page.get_by_label("Refund all (25.00 USD)")).not_to_be_checked()
        page.get_by_label("Refund part: the amount below").check()
        page.get_by_role("spinbutton", name="Amount").fill("12.50")
        page.get_by_label("Refund reason").select_option("damaged")
        page.get_by_label("Back to stock: MUG-001").fill("1")
        page.get_by_label("Note").fill("One mug arrived chipped and came back")
        screenshots(page, "refund-confirmation")
        page.get_by_role("button", name="Refund").click()

        expect(
            page.get_by_text(f"Order {order.reference}: refund of 12.50 USD requested, 1 unit back in stock.")
        ).to_be_visible()
        expect(page.get_by_test_id("history")).to_contain_text("Refunded 12.50 USD")
        screenshots(page, "refunded-order")

    refund_email = wait_for(
        lambda: next((m for m in smtp_server.received if m.subject.startswith("A refund for your order")), None),
        what="the refund email",
    )
    assert refund_email.recipients == ["shopper@example.com"]
    body = refund_email.part("text/plain")
    assert "We have refunded 12.50 USD" in body and "Reason: Damaged" in body
    assert "One mug arrived chipped" not in body  # the note is for the staff
    assert "Your credit note CN-00000001" in body
    assert re.search(r"Refunded so far: 12\.50 USD of 25\.00 USD", body)
    assert stock_of("MUG-001").on_hand == 4


def test_a_manager_marks_a_disputed_order_handled_the_tile_goes_to_zero_and_a_new_dispute_brings_it_back(
    live_server, manager_login, make_product, shopper, fake_stripe, api, screenshots
):
    from tests.support.fake_stripe import deliver

    make_product("MUG-001", price="12.50", on_hand=5, name="Ceramic mug")
    order = shopper.buys({"MUG-001": 1})
    [intent] = fake_stripe.intents_for(order.reference)
    deliver(api, fake_stripe.dispute(intent["id"], reason="product_not_received"))
    tile = '[data-testid="tile"]'

    with chromium_page() as page:
        page.set_viewport_size({"width": 1400, "height": 900})
        manager_login(page)
        needing = page.locator(tile, has_text="needing attention")
        expect(needing).to_contain_text("1")
        screenshots(page, "home-one-needing-attention")
        needing.click()
        page.get_by_role("link", name=order.reference).click()
        page.get_by_role("link", name="Mark handled…").click()
        expect(page.get_by_text("product_not_received")).to_be_visible()  # what it was flagged for
        expect(page.get_by_label("Note")).to_have_attribute("required", "")  # no note, no click
        page.get_by_label("Note").fill("Tracking shows it delivered; evidence sent to the bank")
        screenshots(page, "mark-handled-confirmation")
        page.get_by_role("button", name="Mark handled").click()
        handled = f"Order {order.reference}: marked handled; it no longer needs attention."
        expect(page.get_by_text(handled)).to_be_visible()
        expect(page.get_by_text("Marked handled (flagged): Tracking shows it delivered")).to_be_visible()
        screenshots(page, "order-marked-handled")

        page.goto(live_server.url + "/admin/")
        expect(page.locator(tile, has_text="needing attention")).to_contain_text("0")
        screenshots(page, "home-none-needing-attention")

        deliver(api, fake_stripe.dispute(intent["id"], reason="duplicate"))  # a new problem
        page.reload()
        expect(page.locator(tile, has_text="needing attention")).to_contain_text("1")
        screenshots(page, "home-new-dispute")
