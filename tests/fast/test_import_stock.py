"""`manage.py import_stock FILE.csv`: staff load the catalog and stock counts in bulk."""

from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from inventory.models import Product, Stock, StockMovement
from tests.support.catalog import HEADER, catalog_state
from tests.support.invariants import assert_stock_invariants, stock_of


@pytest.fixture
def csv_file(tmp_path):
    def write(body: str, header: str = HEADER) -> Path:
        path = tmp_path / "stock.csv"
        path.write_text(header + body, encoding="utf-8")
        return path

    return write


def import_stock(path: Path, *args: str) -> str:
    out = StringIO()
    call_command("import_stock", str(path), *args, stdout=out)
    return out.getvalue()


def test_an_import_creates_products_and_sets_their_stock_through_the_ledger(db, csv_file):
    output = import_stock(csv_file("MUG-001,Ceramic mug,12.50,USD,120\nCAP-RED,Red cap,15.00,eur,0\n"))

    assert "2 products created, 0 updated, 0 unchanged" in output
    mug = Product.objects.get(sku="MUG-001")
    assert (mug.name, mug.price, mug.currency, mug.active) == ("Ceramic mug", Decimal("12.50"), "USD", True)
    assert Product.objects.get(sku="CAP-RED").currency == "EUR"
    assert (stock_of("MUG-001").on_hand, stock_of("CAP-RED").on_hand) == (120, 0)
    assert list(StockMovement.objects.values_list("product__sku", "quantity", "reason")) == [("MUG-001", 120, "import")]
    assert_stock_invariants()


def test_a_second_import_updates_products_and_brings_stock_to_the_new_counts(db, csv_file):
    import_stock(csv_file("MUG-001,Ceramic mug,12.50,USD,120\nCAP-RED,Red cap,15.00,USD,45\n"))

    output = import_stock(csv_file("MUG-001,Big ceramic mug,14.00,USD,100\nCAP-RED,Red cap,15.00,USD,45\n"))

    assert "0 products created, 1 updated, 1 unchanged" in output
    mug = Product.objects.get(sku="MUG-001")
    assert (mug.name, mug.price) == ("Big ceramic mug", Decimal("14.00"))
    assert stock_of("MUG-001").on_hand == 100
    assert list(StockMovement.objects.filter(product=mug).order_by("id").values_list("quantity", flat=True)) == [
        120,
        -20,
    ]
    assert StockMovement.objects.filter(product__sku="CAP-RED").count() == 1
    assert_stock_invariants()


GOOD_ROW = "MUG-001,Ceramic mug,12.50,USD,10\n"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        pytest.param(GOOD_ROW + "CAP-RED,Red cap,fifteen,USD,5\n", "row 3", id="price-not-a-number"),
        pytest.param(GOOD_ROW + "CAP-RED,Red cap,-1.00,USD,5\n", "row 3", id="negative-price"),
        pytest.param(GOOD_ROW + "CAP-RED,Red cap,1.005,USD,5\n", "row 3", id="price-with-three-decimals"),
        pytest.param(GOOD_ROW + "CAP-RED,Red cap,15.00,USD,-5\n", "row 3", id="negative-on-hand"),
        pytest.param(GOOD_ROW + "CAP-RED,Red cap,15.00,USD,2.5\n", "row 3", id="fractional-on-hand"),
        pytest.param(GOOD_ROW + "CAP-RED,Red cap,15.00,USD\n", "row 3", id="missing-column"),
        pytest.param(GOOD_ROW + "CAP-RED,Red cap,1,200.00,USD,5\n", "row 3", id="extra-column"),
        pytest.param(GOOD_ROW + "CAP-RED,Red cap,15.00,DOLLARS,5\n", "row 3", id="bad-currency"),
        pytest.param(GOOD_ROW + "CAP-RED,,15.00,USD,5\n", "row 3", id="blank-name"),
        pytest.param(GOOD_ROW + ",Red cap,15.00,USD,5\n", "row 3", id="blank-sku"),
        pytest.param(GOOD_ROW + "CAP-RED,Red cap,15.00,USD,5\n" + GOOD_ROW, "row 4", id="duplicate-sku"),
    ],
)
def test_a_bad_row_is_named_and_nothing_is_imported(db, csv_file, body, named):
    import_stock(csv_file("MUG-001,Ceramic mug,9.00,USD,3\n"))
    before = catalog_state()

    with pytest.raises(CommandError, match=f"{named}.*nothing was changed"):
        import_stock(csv_file(body))

    assert catalog_state() == before


def test_a_file_with_the_wrong_header_is_refused(db, csv_file):
    with pytest.raises(CommandError, match="header must be sku,name,price,currency,on_hand"):
        import_stock(csv_file(GOOD_ROW, header="sku,name,price,on_hand\n"))

    assert not Product.objects.exists()


def test_a_file_that_is_not_utf8_text_is_refused(db, tmp_path):
    path = tmp_path / "stock.csv"
    path.write_bytes(HEADER.encode() + "MUG-001,Tasse \xe0 caf\xe9,9.00,EUR,3\n".encode("latin-1"))

    with pytest.raises(CommandError, match="not UTF-8"):
        import_stock(path)

    assert not Product.objects.exists()


def test_a_missing_file_is_refused(db, tmp_path):
    with pytest.raises(CommandError, match="nothing was changed"):
        import_stock(tmp_path / "nope.csv")


def test_an_import_below_what_orders_have_reserved_is_refused_naming_the_row(
    csv_file, make_product, shopper, held_pipeline
):
    make_product("MUG-001", on_hand=5)
    shopper.buys({"MUG-001": 3})
    held_pipeline.lose_queued()
    before = catalog_state()

    with pytest.raises(CommandError, match="row 3.*reserved"):
        import_stock(csv_file("CAP-RED,Red cap,15.00,USD,5\nMUG-001,Ceramic mug,12.50,USD,2\n"))

    assert catalog_state() == before


def test_if_empty_loads_an_empty_catalog_and_leaves_a_loaded_one_alone(db, csv_file):
    import_stock(csv_file("MUG-001,Ceramic mug,12.50,USD,120\n"), "--if-empty")
    assert stock_of("MUG-001").on_hand == 120

    output = import_stock(csv_file("MUG-001,Ceramic mug,12.50,USD,5\nCAP-RED,Red cap,15.00,USD,45\n"), "--if-empty")

    assert "nothing imported" in output
    assert stock_of("MUG-001").on_hand == 120
    assert not Product.objects.filter(sku="CAP-RED").exists()


def test_the_demo_catalog_loads_a_dozen_products_with_stock(db):
    import_stock(settings.BASE_DIR / "inventory" / "demo_catalog.csv")

    assert Product.objects.count() >= 12
    assert Stock.objects.filter(on_hand__gt=0).count() >= 12
    assert_stock_invariants()
