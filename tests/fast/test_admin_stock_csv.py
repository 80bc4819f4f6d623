"""CSV in the admin: an import previewed row by row before anything is written, exports that import back."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from inventory.models import Product, StockMovement
from inventory.services import adjust_stock
from tests.support.admin_client import FormFields
from tests.support.catalog import HEADER, catalog_state
from tests.support.invariants import stock_of

pytestmark = pytest.mark.usefixtures("stock_invariants_hold")

IMPORT_URL = "/admin/inventory/product/import/"


def upload(client, body: str, *, header: str = HEADER, name: str = "stock.csv"):
    """Choose a file on the import page and press Preview."""
    file = SimpleUploadedFile(name, (header + body).encode(), content_type="text/csv")
    return client.post(IMPORT_URL, {"file": file, "preview": "Preview"})


def confirm(client, preview_response):
    """Press the preview's Import button, sending back the file it previewed."""
    page = preview_response.content.decode()
    assert 'name="apply"' in page, "the preview offers no Import button"
    return client.post(IMPORT_URL, {**FormFields(page).data, "apply": "Import"}, follow=True)


def preview_rows(response) -> list[tuple[int, str, str]]:
    """(line, sku, what would change) as the preview table says it."""
    said = []
    for row in response.context["previews"]:
        what = row.error or ("no change" if row.unchanged else "; ".join(row.changes))
        said.append((row.line, row.sku, what))
    return said


def test_the_preview_says_what_each_row_would_change_and_writes_nothing(clerk, make_product):
    make_product("MUG-001", price="12.50", on_hand=5, name="Ceramic mug")
    make_product("CAP-RED", price="15.00", on_hand=3, name="Red cap")
    before = catalog_state()

    response = upload(
        clerk, "MUG-001,Big mug,14.00,USD,12\nCAP-RED,Red cap,15.00,USD,3\nTEE-BLK,Black tee,20.00,USD,30\n"
    )

    assert response.status_code == 200
    assert preview_rows(response) == [
        (2, "MUG-001", "name: Ceramic mug → Big mug; price: 12.50 → 14.00; on hand: 5 → 12 (+7)"),
        (3, "CAP-RED", "no change"),
        (4, "TEE-BLK", "new product, 30 on hand"),
    ]
    page = response.content.decode()
    assert "Preview of stock.csv: 2 of 3 rows would change something" in page
    assert "Nothing has been written yet." in page
    assert catalog_state() == before


def test_importing_the_previewed_file_applies_it_through_the_ledger(clerk, make_product):
    make_product("MUG-001", price="12.50", on_hand=5, name="Ceramic mug")
    preview = upload(clerk, "MUG-001,Big mug,14.00,USD,12\nTEE-BLK,Black tee,20.00,USD,30\n")

    response = confirm(clerk, preview)

    assert "Imported stock.csv: 1 product created, 1 updated, 0 unchanged." in response.content.decode()
    assert Product.objects.get(sku="MUG-001").name == "Big mug"
    assert (stock_of("MUG-001").on_hand, stock_of("TEE-BLK").on_hand) == (12, 30)
    line = StockMovement.objects.filter(product__sku="MUG-001").first()
    assert (line.quantity, line.reason, line.user, line.note) == (7, "import", clerk.user, "import stock.csv")


def test_every_bad_row_is_named_by_its_line_and_nothing_can_be_imported(clerk, make_product):
    make_product("MUG-001", on_hand=5)
    before = catalog_state()

    response = upload(
        clerk,
        "MUG-001,Ceramic mug,12.50,USD,10\nCAP-RED,Red cap,fifteen,USD,5\nTEE-BLK,Black tee,20.00,USD,-3\n",
    )

    page = response.content.decode()
    assert [(error.line, error.message) for error in response.context["errors"]] == [
        (3, "CAP-RED: price 'fifteen' is not a number"),
        (4, "TEE-BLK: on_hand '-3' must be a whole number of zero or more"),
    ]
    assert "stock.csv: nothing was imported. Fix 2 rows and upload the file again." in page
    assert 'name="apply"' not in page
    assert catalog_state() == before


def test_an_unknown_currency_a_sku_outside_the_alphabet_and_a_zero_price_are_refused_by_line(clerk):
    before = catalog_state()

    response = upload(
        clerk,
        "MUG-001,Ceramic mug,15.00,USD,10\nBAD SKU!,Odd thing,10.00,USD,5\n"
        "CUP-001,Cup,10.00,XYZ,5\nCAP-RED,Red cap,0,USD,5\nTEE-BLK,Tee,10.00,XTS,5\n",
    )

    assert [(error.line, error.message) for error in response.context["errors"]] == [
        (
            3,
            "BAD SKU!: 'BAD SKU!' is not a SKU: 1 to 64 characters of A-Z, a-z, 0-9, '-', '_' and '.', "
            "starting with a letter or a digit.",
        ),
        (4, "CUP-001: 'XYZ' is not an ISO 4217 currency code (such as USD, EUR, JPY)."),
        (5, "CAP-RED: A price is more than 0, with at most two decimals (got 0)."),
        (6, "TEE-BLK: 'XTS' is not an ISO 4217 currency code (such as USD, EUR, JPY)."),
    ]
    assert 'name="apply"' not in response.content.decode()
    assert catalog_state() == before


def test_the_shops_currencies_narrow_what_a_product_may_be_priced_in(clerk, settings):
    settings.SHOP_CURRENCIES = ("USD",)

    response = upload(clerk, "MUG-001,Ceramic mug,15.00,USD,10\nCUP-001,Cup,10.00,eur,5\n")

    assert [(error.line, error.message) for error in response.context["errors"]] == [
        (3, "CUP-001: This shop prices in USD, not EUR (SHOP_CURRENCIES)."),
    ]
    assert "a currency is an ISO 4217 code\n    this shop sells in (USD)" in response.content.decode()


def test_the_preview_shows_every_column_it_will_write_price_and_currency_included(clerk, make_product):
    make_product("MUG-001", price="12.50", on_hand=5, name="Ceramic mug")

    response = upload(
        clerk,
        "MUG-001,Ceramic mug,12.50,USD,5,\nCUP-001,Cup,10.00,jpy,4,9\n",
        header="sku,name,price,currency,on_hand,low_stock_threshold\n",
    )

    table = response.content.decode().split('data-testid="import-preview"')[1].split("</table>")[0]
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)]
    assert [row[:8] for row in cells if row] == [
        ["2", "MUG-001", "Ceramic mug", "12.50", "USD", "5", "as it is", "as it is"],
        ["3", "CUP-001", "Cup", "10.00", "JPY", "4", "9", "as it is"],
    ]


def test_the_product_form_refuses_an_unknown_currency_a_bad_sku_and_a_zero_price(clerk):
    response = clerk.post(
        "/admin/inventory/product/add/",
        {"sku": "BAD SKU!", "name": "Odd", "price": "0", "currency": "XYZ", "active": "on", "low_stock_threshold": "5"},
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"sku", "price", "currency"}
    assert "'XYZ' is not an ISO 4217 currency code (such as USD, EUR, JPY)." in errors["currency"]
    assert not Product.objects.exists()


def test_a_row_below_what_orders_reserved_is_shown_in_the_preview_and_refused_on_import(
    clerk, make_product, shopper, held_pipeline
):
    make_product("MUG-001", on_hand=5, name="Ceramic mug")
    shopper.buys({"MUG-001": 3})
    held_pipeline.lose_queued()
    before = catalog_state()

    preview = upload(clerk, "CAP-RED,Red cap,15.00,USD,5\nMUG-001,Ceramic mug,12.50,USD,2\n")
    assert preview_rows(preview)[1] == (3, "MUG-001", "on_hand 2 is below the 3 units reserved by orders")
    assert 'name="apply"' not in preview.content.decode()
    # Sent anyway (a stale preview, a hand-made request): the import checks again under the row lock.
    forced = clerk.post(
        IMPORT_URL,
        {
            "csv_text": HEADER + "CAP-RED,Red cap,15.00,USD,5\nMUG-001,Ceramic mug,12.50,USD,2\n",
            "file_name": "stock.csv",
            "apply": "Import",
        },
    )

    assert [error.line for error in forced.context["errors"]] == [3]
    assert catalog_state() == before


def exported_products(client) -> str:
    response = client.get("/admin/inventory/product/export/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="products-')
    return b"".join(response.streaming_content).decode()


def test_the_product_export_lists_every_product_with_its_stock(clerk, make_product, shopper, held_pipeline):
    make_product("MUG-001", price="12.50", on_hand=5, name="Ceramic mug, large")
    make_product("CAP-RED", price="15.00", on_hand=0, active=False)
    shopper.buys({"MUG-001": 2})
    held_pipeline.lose_queued()

    rows = list(csv.reader(io.StringIO(exported_products(clerk))))

    assert rows == [
        ["sku", "name", "price", "currency", "on_hand", "reserved", "available", "low_stock_threshold", "active"],
        ["CAP-RED", "Product CAP-RED", "15.00", "USD", "0", "0", "0", "5", "false"],
        ["MUG-001", "Ceramic mug, large", "12.50", "USD", "5", "2", "3", "5", "true"],
    ]


def test_an_exported_file_imports_back_without_changing_anything(clerk, make_product, tmp_path):
    make_product("MUG-001", price="12.50", on_hand=5, name='Mug "the big one", 0.5 l')
    make_product("CAP-RED", price="15.00", on_hand=0, active=False)
    Product.objects.filter(sku="MUG-001").update(low_stock_threshold=12)
    exported = exported_products(clerk)
    before = catalog_state()

    preview = upload(clerk, exported, header="", name="products.csv")
    assert [what for _, _, what in preview_rows(preview)] == ["no change", "no change"]
    response = confirm(clerk, preview)
    assert "Imported products.csv: 0 products created, 0 updated, 2 unchanged." in response.content.decode()
    path = tmp_path / "products.csv"
    path.write_text(exported, encoding="utf-8")
    call_command("import_stock", str(path), stdout=io.StringIO())

    assert catalog_state() == before


def test_the_ledger_export_holds_the_lines_of_the_period_oldest_first(clerk, make_product):
    mug = make_product("MUG-001", on_hand=5)
    adjust_stock(product=mug, delta=-1, note="=HYPERLINK(evil)", user=clerk.user)
    adjust_stock(product=mug, delta=2, note="long ago")
    StockMovement.objects.filter(note="long ago").update(created_at=timezone.now() - timedelta(days=40))
    today = timezone.localdate()

    response = clerk.get("/admin/inventory/stockmovement/export/", {"start": today - timedelta(days=7), "end": today})

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["created_at", "sku", "quantity", "reason", "note", "order", "user"]
    assert [row[1:] for row in rows[1:]] == [
        ["MUG-001", "5", "import", "test", "", ""],
        ["MUG-001", "-1", "adjustment", "'=HYPERLINK(evil)", "", clerk.user.username],
    ]
    assert response["Content-Disposition"] == (
        f'attachment; filename="ledger-{today - timedelta(days=7):%Y-%m-%d}-to-{today:%Y-%m-%d}.csv"'
    )


def test_the_ledger_export_asks_for_a_period_and_refuses_one_that_ends_before_it_starts(clerk):
    today = timezone.localdate()

    asked = clerk.get("/admin/inventory/stockmovement/export/")
    refused = clerk.get("/admin/inventory/stockmovement/export/", {"start": today, "end": today - timedelta(days=1)})

    assert asked.status_code == 200 and 'type="date"' in asked.content.decode()
    assert "The period ends before it starts." in refused.content.decode()
