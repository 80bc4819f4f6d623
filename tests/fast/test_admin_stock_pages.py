"""A stock clerk's pages in the admin: the product list with its stock, restock and adjust forms, the ledger."""

import html
import re

import pytest

from inventory.models import Product, StockMovement
from inventory.services import adjust_stock
from tests.support.admin_client import open_form
from tests.support.invariants import stock_of

# Every scenario ends with the ledger summing to on hand and no stock below zero.
pytestmark = pytest.mark.usefixtures("stock_invariants_hold")


def restock_url(product: Product) -> str:
    return f"/admin/inventory/product/{product.pk}/restock/"


def adjust_url(product: Product) -> str:
    return f"/admin/inventory/product/{product.pk}/adjust/"


def quantities(product: Product) -> list[int]:
    return list(StockMovement.objects.filter(product=product).order_by("id").values_list("quantity", flat=True))


def test_a_restock_is_a_ledger_line_with_the_clerk_and_the_reason_and_lands_on_the_ledger(clerk, make_product):
    mug = make_product("MUG-001", on_hand=2)
    form = open_form(clerk, restock_url(mug))

    response = clerk.post(restock_url(mug), {**form, "quantity": "12", "reason": "delivery 4711"}, follow=True)

    assert stock_of("MUG-001").on_hand == 14
    line = StockMovement.objects.filter(product=mug).first()
    assert (line.quantity, line.reason, line.user, line.note) == (12, "restock", clerk.user, "delivery 4711")
    page = response.content.decode()
    assert response.redirect_chain[-1][0] == f"/admin/inventory/stockmovement/?product__id__exact={mug.pk}"
    assert "MUG-001: +12 units (delivery 4711). Now 14 on hand, 14 available." in page
    assert "Ledger of MUG-001" in page
    assert page.index("delivery 4711") < page.index(">test<")  # newest first


def test_an_adjustment_applies_its_delta_to_the_stock_as_it_is_when_saved_not_as_it_was_shown(clerk, make_product):
    mug = make_product("MUG-001", on_hand=5)
    form = open_form(clerk, adjust_url(mug))
    adjust_stock(product=mug, delta=-2, note="sold over the counter while the form was open")

    response = clerk.post(adjust_url(mug), {**form, "quantity": "-1", "reason": "broken in the shelf"})

    assert response.status_code == 302
    assert stock_of("MUG-001").on_hand == 2
    assert quantities(mug) == [5, -2, -1]
    assert StockMovement.objects.filter(product=mug).first().reason == "adjustment"


def test_the_same_form_submitted_twice_restocks_once(clerk, make_product):
    mug = make_product("MUG-001", on_hand=1)
    form = {**open_form(clerk, restock_url(mug)), "quantity": "10", "reason": "delivery"}

    first, second = clerk.post(restock_url(mug), form), clerk.post(restock_url(mug), form)

    assert (first.status_code, second.status_code) == (302, 302)
    assert stock_of("MUG-001").on_hand == 11
    assert quantities(mug) == [1, 10]


@pytest.mark.parametrize(
    ("url", "fields", "message"),
    [
        pytest.param(restock_url, {"quantity": "5", "reason": ""}, "This field is required.", id="no-reason"),
        pytest.param(restock_url, {"quantity": "-5", "reason": "x"}, "greater than or equal to 1", id="negative"),
        pytest.param(adjust_url, {"quantity": "0", "reason": "count"}, "other than zero", id="zero"),
        pytest.param(adjust_url, {"quantity": "many", "reason": "count"}, "Enter a whole number.", id="not-a-number"),
    ],
)
def test_a_bad_stock_form_is_refused_with_the_field_error_and_changes_nothing(
    clerk, make_product, url, fields, message
):
    mug = make_product("MUG-001", on_hand=5)
    form = open_form(clerk, url(mug))

    response = clerk.post(url(mug), {**form, **fields})

    assert response.status_code == 200
    assert message in response.content.decode()
    assert quantities(mug) == [5]


def test_an_adjustment_below_the_reserved_units_is_refused_with_a_message(clerk, make_product, shopper, held_pipeline):
    mug = make_product("MUG-001", on_hand=5)
    shopper.buys({"MUG-001": 4})
    held_pipeline.lose_queued()
    form = open_form(clerk, adjust_url(mug))

    response = clerk.post(adjust_url(mug), {**form, "quantity": "-3", "reason": "breakage"})

    assert response.status_code == 200
    assert "MUG-001: cannot remove 3 units; 5 on hand, 4 reserved by orders." in response.content.decode()
    stock = stock_of("MUG-001")
    assert (stock.on_hand, stock.reserved) == (5, 4)


def test_saving_the_product_page_changes_the_product_and_leaves_stock_alone(clerk, make_product):
    mug = make_product("MUG-001", on_hand=5)
    url = f"/admin/inventory/product/{mug.pk}/change/"
    form = open_form(clerk, url)
    adjust_stock(product=mug, delta=3, note="delivery booked meanwhile")

    response = clerk.post(url, {**form, "name": "Big mug", "low_stock_threshold": "8"})

    assert response.status_code == 302
    mug.refresh_from_db()
    assert (mug.name, mug.low_stock_threshold) == ("Big mug", 8)
    assert stock_of("MUG-001").on_hand == 8
    assert quantities(mug) == [5, 3]


def test_a_product_added_in_admin_starts_with_no_stock_and_is_restocked_through_the_ledger(clerk):
    fields = {"sku": "CAP-RED", "name": "Red cap", "price": "15.00", "currency": "USD", "active": "on"}
    response = clerk.post(
        "/admin/inventory/product/add/", {**open_form(clerk, "/admin/inventory/product/add/"), **fields}
    )
    assert response.status_code == 302
    cap = Product.objects.get(sku="CAP-RED")

    clerk.post(restock_url(cap), {**open_form(clerk, restock_url(cap)), "quantity": "40", "reason": "first delivery"})

    assert stock_of("CAP-RED").on_hand == 40
    assert StockMovement.objects.get(product=cap).user == clerk.user


def product_rows(client, query: str = "") -> list[str]:
    """The SKUs of the product list's rows, in the order shown."""
    page = client.get(f"/admin/inventory/product/{query}").content.decode()
    return re.findall(r'<th class="field-sku"><a href="[^"]+">([^<]+)</a>', page)


def sort_link(client, column: str, query: str = "") -> str:
    """The query string a click on the column's header leads to (ascending first, then descending)."""
    page = client.get(f"/admin/inventory/product/{query}").content.decode()
    header = re.search(rf'<th scope="col" class="[^"]*column-{column}[^"]*">(.*?)</th>', page, re.S).group(1)
    return html.unescape(re.findall(r'<a href="(\?o=[^"]*)"', header)[-1])


def test_the_product_list_shows_on_hand_reserved_available_and_marks_the_low_ones(
    clerk, make_product, shopper, held_pipeline
):
    make_product("MUG-001", on_hand=20)
    make_product("CAP-RED", on_hand=7)
    shopper.buys({"CAP-RED": 3})
    held_pipeline.lose_queued()

    page = clerk.get("/admin/inventory/product/").content.decode()

    cap = Product.objects.get(sku="CAP-RED")
    ledger_link = f'<a href="/admin/inventory/stockmovement/?product__id__exact={cap.pk}" title="Ledger">7</a>'
    assert f'<td class="field-on_hand">{ledger_link}</td><td class="field-reserved">3</td>' in page
    assert '<span class="low-stock" title="At or below its threshold">4 low</span>' in page
    assert '<td class="field-available">20</td>' in page
    assert product_rows(clerk, "?low_stock=yes") == ["CAP-RED"]
    assert product_rows(clerk, "?low_stock=no") == ["MUG-001"]


def test_the_product_list_sorts_by_available_and_searches_sku_and_name(clerk, make_product):
    make_product("MUG-001", on_hand=20, name="Ceramic mug")
    make_product("CAP-RED", on_hand=7, name="Red cap")
    make_product("TEE-BLK", on_hand=12, name="Black tee")

    by_available = sort_link(clerk, "available")
    assert product_rows(clerk, by_available) == ["CAP-RED", "TEE-BLK", "MUG-001"]
    assert product_rows(clerk, sort_link(clerk, "available", by_available)) == ["MUG-001", "TEE-BLK", "CAP-RED"]
    assert product_rows(clerk, "?q=ceramic") == ["MUG-001"]
    assert product_rows(clerk, "?q=TEE-") == ["TEE-BLK"]


def test_the_ledger_of_one_product_is_read_only_and_newest_first(clerk, make_product):
    mug = make_product("MUG-001", on_hand=5)
    make_product("CAP-RED", on_hand=9)
    adjust_stock(product=mug, delta=2, note="second")
    adjust_stock(product=mug, delta=-1, note="third")

    page = clerk.get(f"/admin/inventory/stockmovement/?product__id__exact={mug.pk}").content.decode()

    assert page.index(">third<") < page.index(">second<") < page.index(">test<")
    assert "CAP-RED" not in page.split("Ledger of MUG-001", 1)[1].split('id="changelist-filter"')[0]
    line = StockMovement.objects.filter(product=mug).first()
    assert clerk.post(f"/admin/inventory/stockmovement/{line.pk}/change/", {"quantity": "99"}).status_code == 403
    assert StockMovement.objects.get(pk=line.pk).quantity == -1
