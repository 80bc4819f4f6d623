"""Django admin as staff use it: read-only orders, cancelling (stock pages: tests/fast/test_admin_stock_pages.py).

Forms are loaded, filled and submitted the way a browser does, from the page's own fields.
"""

import pytest
from django.contrib.auth import get_user_model

from orders.models import Order
from payments.models import SimulatedPaymentIntent
from tests.support.admin_client import authenticator_app, open_form, pass_second_factor
from tests.support.invariants import row_counts, stock_of

# Every scenario ends with the ledger summing to on hand and no stock below zero.
pytestmark = pytest.mark.usefixtures("stock_invariants_hold")

PASSWORD = "correct horse battery staple"


@pytest.fixture
def staff(client, transactional_db, settings):
    """A client logged in through the admin's login form as a superuser."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only
    user = get_user_model().objects.create_superuser("boss", "boss@shop.example", PASSWORD)
    response = client.post("/admin/login/?next=/admin/", {"username": "boss", "password": PASSWORD})
    assert response.status_code == 302
    pass_second_factor(client, authenticator_app(user))  # a superuser moves money
    client.user = user
    return client


def test_orders_are_listed_and_shown_with_lines_payment_and_history(staff, make_product, shopper):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 2})

    listing = staff.get("/admin/orders/order/")
    page = staff.get(f"/admin/orders/order/{order.pk}/change/")

    assert listing.status_code == 200
    assert order.reference in listing.content.decode()
    assert page.status_code == 200
    html = page.content.decode()
    for expected in (order.reference, "MUG-001", "COMPLETED", "captured", "validate_order", "send_notification"):
        assert expected in html


def test_orders_are_read_only_in_admin(staff, make_product, shopper):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 2}, pay_with="pm_card_chargeDeclined")
    url = f"/admin/orders/order/{order.pk}/change/"
    form = open_form(staff, url)
    before = row_counts()

    staff.post(url, {**form, "state": "COMPLETED", "total": "0.00", "email": "thief@example.com"})

    order.refresh_from_db()
    assert (order.state, order.email) == ("PAYMENT_FAILED", "shopper@example.com")
    assert row_counts() == before
    assert staff.get("/admin/orders/order/add/").status_code == 403
    assert staff.post(f"/admin/orders/order/{order.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Order.objects.filter(pk=order.pk).exists()


def test_the_cancel_action_cancels_an_open_order_and_gives_its_stock_and_money_back(
    staff, make_product, shopper, held_pipeline
):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 2})
    held_pipeline.run_by_hand(order, "validate_order", "process_payment")
    held_pipeline.run_inline()

    selected = {"action": "cancel_selected", "_selected_action": [order.pk]}
    confirmation = staff.post("/admin/orders/order/", selected)
    assert "Releases the reservation of 2 x MUG-001" in confirmation.content.decode()
    assert order.events.filter(step="cancel_order").count() == 0  # nothing happens before it is confirmed
    response = staff.post(
        "/admin/orders/order/", {**selected, "confirmed": "yes", "reason": "Cancelled by the shop."}, follow=True
    )

    assert f"Order {order.reference} cancelled." in response.content.decode()
    order.refresh_from_db()
    assert order.state == "CANCELLED"
    assert order.failure_reason == "Cancelled by the shop."  # the shopper reads this: no staff names
    assert order.events.get(step="cancel_order").actor == "boss"
    assert stock_of("MUG-001").reserved == 0
    assert SimulatedPaymentIntent.objects.get().status == "canceled"


def test_the_cancel_action_leaves_a_finished_order_alone_and_says_so(staff, make_product, shopper):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 2})

    response = staff.post(
        "/admin/orders/order/", {"action": "cancel_selected", "_selected_action": [order.pk]}, follow=True
    )

    assert f"Not cancelled: {order.reference} is COMPLETED and cannot be cancelled" in response.content.decode()
    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert SimulatedPaymentIntent.objects.get().status == "succeeded"
