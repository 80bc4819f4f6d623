"""Django admin as staff use it: stock adjustments on the product page, read-only orders, cancelling.

Forms are loaded, filled and submitted the way a browser does, from the page's own fields.
"""

from html.parser import HTMLParser

import pytest
from django.contrib.auth import get_user_model

from inventory.models import Product, StockMovement
from inventory.services import adjust_stock
from orders.models import Order
from payments.models import SimulatedPaymentIntent
from tests.invariants import row_counts, stock_of

# Every scenario ends with the ledger summing to on hand and no stock below zero.
pytestmark = pytest.mark.usefixtures("stock_invariants_hold")

PASSWORD = "correct horse battery staple"


class FormFields(HTMLParser):
    """The values a browser would submit from an admin change form (the first Save button)."""

    SKIPPED_TYPES = {"submit", "button", "search", "reset", "image", "file"}

    def __init__(self, html: str):
        super().__init__()
        self.data: dict[str, str] = {}
        self._select: str | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name") or ""
        if "__prefix__" in name or name == "csrfmiddlewaretoken":
            return
        if tag == "input" and name and attrs.get("type", "text") not in self.SKIPPED_TYPES:
            if attrs.get("type") in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.data[name] = attrs.get("value") or "on"
            else:
                self.data[name] = attrs.get("value") or ""
        elif tag == "textarea" and name:
            self.data[name] = ""
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and ("selected" in attrs or self._select not in self.data):
            self.data[self._select] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


@pytest.fixture
def staff(client, transactional_db, settings):
    """A client logged in through the admin's login form as a superuser."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only
    user = get_user_model().objects.create_superuser("boss", "boss@shop.example", PASSWORD)
    response = client.post("/admin/login/?next=/admin/", {"username": "boss", "password": PASSWORD})
    assert response.status_code == 302
    client.user = user
    return client


def open_form(client, url: str) -> dict[str, str]:
    response = client.get(url)
    assert response.status_code == 200
    return FormFields(response.content.decode()).data


def product_url(product: Product) -> str:
    return f"/admin/inventory/product/{product.pk}/change/"


def test_a_stock_adjustment_on_the_product_page_is_a_ledger_line_with_the_user_and_reason(staff, make_product):
    mug = make_product("MUG-001", on_hand=5)
    form = open_form(staff, product_url(mug))

    response = staff.post(product_url(mug), {**form, "stock_adjustment": "12", "adjustment_note": "delivery 4711"})

    assert response.status_code == 302
    assert stock_of("MUG-001").on_hand == 17
    line = StockMovement.objects.filter(product=mug).first()
    assert (line.quantity, line.reason, line.user, line.note) == (12, "adjustment", staff.user, "delivery 4711")


def test_an_adjustment_applies_its_delta_to_the_stock_as_it_is_when_saved_not_as_it_was_shown(staff, make_product):
    mug = make_product("MUG-001", on_hand=5)
    form = open_form(staff, product_url(mug))
    adjust_stock(product=mug, delta=-2, note="sold over the counter while the form was open")

    response = staff.post(product_url(mug), {**form, "stock_adjustment": "10", "adjustment_note": "delivery"})

    assert response.status_code == 302
    assert stock_of("MUG-001").on_hand == 13
    assert list(StockMovement.objects.filter(product=mug).order_by("id").values_list("quantity", flat=True)) == [
        5,
        -2,
        10,
    ]


def test_saving_the_product_page_without_an_adjustment_leaves_stock_alone(staff, make_product):
    mug = make_product("MUG-001", on_hand=5)
    form = open_form(staff, product_url(mug))
    adjust_stock(product=mug, delta=3, note="delivery booked meanwhile")

    response = staff.post(product_url(mug), {**form, "name": "Big mug"})

    assert response.status_code == 302
    assert Product.objects.get(pk=mug.pk).name == "Big mug"
    assert stock_of("MUG-001").on_hand == 8
    assert StockMovement.objects.filter(product=mug).count() == 2


def test_an_adjustment_without_a_reason_is_refused(staff, make_product):
    mug = make_product("MUG-001", on_hand=5)
    form = open_form(staff, product_url(mug))

    response = staff.post(product_url(mug), {**form, "stock_adjustment": "-1"})

    assert response.status_code == 200
    assert "Give a reason for the adjustment." in response.content.decode()
    assert stock_of("MUG-001").on_hand == 5


def test_an_adjustment_below_the_reserved_units_is_refused_with_a_message(staff, make_product, shopper, held_pipeline):
    mug = make_product("MUG-001", on_hand=5)
    shopper.buys({"MUG-001": 4})
    held_pipeline.lose_queued()
    form = open_form(staff, product_url(mug))

    response = staff.post(
        product_url(mug), {**form, "stock_adjustment": "-3", "adjustment_note": "breakage"}, follow=True
    )

    page = response.content.decode()
    assert "Cannot remove 3 units: 5 on hand, 4 reserved by orders." in page
    assert "was changed successfully" not in page
    stock = stock_of("MUG-001")
    assert (stock.on_hand, stock.reserved) == (5, 4)


def test_a_product_added_in_admin_gets_its_first_stock_as_a_ledger_line(staff):
    form = open_form(staff, "/admin/inventory/product/add/")
    fields = {"sku": "CAP-RED", "name": "Red cap", "price": "15.00", "currency": "USD", "active": "on"}

    response = staff.post(
        "/admin/inventory/product/add/",
        {**form, **fields, "stock_adjustment": "40", "adjustment_note": "first delivery"},
    )

    assert response.status_code == 302
    assert stock_of("CAP-RED").on_hand == 40
    assert StockMovement.objects.get(product__sku="CAP-RED").user == staff.user


def test_the_product_list_shows_on_hand_reserved_and_available(staff, make_product):
    make_product("MUG-001", on_hand=7)

    response = staff.get("/admin/inventory/product/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "MUG-001" in page
    assert "Available" in page


def test_the_stock_ledger_cannot_be_edited_in_admin(staff, make_product):
    mug = make_product("MUG-001", on_hand=7)
    line = StockMovement.objects.get(product=mug)

    assert staff.get("/admin/inventory/stockmovement/").status_code == 200
    assert staff.get("/admin/inventory/stockmovement/add/").status_code == 403
    assert staff.post(f"/admin/inventory/stockmovement/{line.pk}/delete/", {"post": "yes"}).status_code == 403
    assert StockMovement.objects.get(pk=line.pk).quantity == 7


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
