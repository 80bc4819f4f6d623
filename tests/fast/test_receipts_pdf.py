"""The receipt PDF: what a shopper reads in it, its pages and fonts, and safe rendering."""

import html
import io
import re
import subprocess
import sys
import threading
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pypdf import PdfReader
from weasyprint import HTML

from orders.models import Order
from receipts.pdf import ASSETS_DIR, BlockedResource, assets_fetcher
from receipts.rendering import ReceiptDocument, ReceiptLine, render_receipt_pdf
from receipts.services import receipt_storage

A4_POINTS = (595.28, 841.89)
TABLE_HEADER = "SKU Item Qty Unit price Line total"


def pdf_pages_text(pdf: bytes) -> list[str]:
    """Each page's text with runs of whitespace folded to one space."""
    return [re.sub(r"\s+", " ", page.extract_text()) for page in PdfReader(io.BytesIO(pdf)).pages]


def stored_pdf(order: Order) -> bytes:
    with receipt_storage().open(order.receipt.storage_key, "rb") as stored:
        return stored.read()


def document_with_lines(count: int, **changes) -> ReceiptDocument:
    lines = tuple(
        ReceiptLine(f"SKU-{i:03d}", f"Product {i:03d}", i % 4 + 1, Decimal("2.50"), Decimal("2.50") * (i % 4 + 1))
        for i in range(1, count + 1)
    )
    subtotal = sum((line.line_total for line in lines), Decimal("0"))
    fields = {
        "number": "R-00000007",
        "issued_at": datetime(2026, 3, 4, 10, 30, tzinfo=UTC),
        "shop_name": "Demo Shop",
        "shop_address": "1 Market Street, Springfield",
        "shop_tax_id": "VAT 000000000",
        "order_reference": "ord_test",
        "ordered_at": datetime(2026, 3, 4, 10, 29, tzinfo=UTC),
        "customer_email": "shopper@example.com",
        "currency": "EUR",
        "lines": lines,
        "subtotal": subtotal,
        "tax_rate_percent": "0",
        "tax": Decimal("0.00"),
        "total": subtotal,
        "card_brand": "visa",
        "card_last4": "4242",
        "payment_reference": "pi_test",
    }
    return ReceiptDocument(**{**fields, **changes})


class CountingHttpServer:
    """A web server on loopback that counts the requests it gets (it should get none)."""

    def __init__(self):
        self.requests: list[str] = []
        recorded = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                recorded.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def web_server():
    server = CountingHttpServer()
    yield server
    server.close()


def images_in(pdf: bytes) -> int:
    count = 0
    for page in PdfReader(io.BytesIO(pdf)).pages:
        xobjects = page.get("/Resources", {}).get("/XObject") or {}
        count += sum(1 for item in xobjects.values() if item.get_object().get("/Subtype") == "/Image")
    return count


def test_the_receipt_of_a_completed_order_reads_back_as_the_order(shopper, make_product, settings):
    settings.SHOP_NAME = "Corner Shop"
    settings.SHOP_ADDRESS = "12 High Street, Leeds"
    settings.SHOP_TAX_ID = "GB 123 4567 89"
    settings.SHOP_TAX_RATE = Decimal("0.2")
    make_product("MUG-001", price="12.50", on_hand=5, name="Blue mug")
    make_product("TEA-002", price="4.00", on_hand=5, name="Green tea")

    order = shopper.buys({"MUG-001": 2, "TEA-002": 1}, email="ada@example.com")

    assert order.state == "COMPLETED"
    receipt = order.receipt
    [text] = pdf_pages_text(stored_pdf(order))
    expected = [
        "Corner Shop",
        "12 High Street, Leeds",
        "Tax id: GB 123 4567 89",
        f"Receipt R-{receipt.pk:08d}",
        f"Order: {order.reference}",
        f"Date: {receipt.created_at:%Y-%m-%d}",
        "Customer: ada@example.com",
        TABLE_HEADER,
        "MUG-001 Blue mug 2 12.50 25.00",
        "TEA-002 Green tea 1 4.00 4.00",
        "Subtotal 29.00 USD",
        "Tax (20%) 5.80 USD",
        "Total 34.80 USD",
        f"Paid by Visa ending in 4242, payment reference {order.payment.provider_reference}.",
        "Page 1 of 1",
    ]
    for snippet in expected:
        assert snippet in text, snippet


def test_the_tax_line_is_printed_when_the_rate_is_zero():
    [text] = pdf_pages_text(render_receipt_pdf(document_with_lines(1, tax_rate_percent="0")))

    assert "Tax (0%) 0.00 EUR" in text


def test_the_receipt_shows_the_rate_the_order_was_taxed_at_even_after_the_rate_changes(
    shopper, make_product, settings, held_pipeline
):
    from orders.pipeline import advance_order

    make_product("MUG-001", price="10.00", on_hand=10)
    settings.SHOP_TAX_RATE = Decimal("0.2")
    order = shopper.buys({"MUG-001": 1})
    settings.SHOP_TAX_RATE = Decimal("0.1")
    held_pipeline.run_inline()

    advance_order(order.pk)

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert (order.tax, order.total) == (Decimal("2.00"), Decimal("12.00"))
    assert "Tax (20%) 2.00 USD" in pdf_pages_text(stored_pdf(order))[0]


def test_receipt_numbers_come_from_the_database_sequence(shopper, make_product):
    make_product("MUG-001", on_hand=10)

    first = shopper.buys({"MUG-001": 1})
    second = shopper.buys({"MUG-001": 1})

    assert second.receipt.pk > first.receipt.pk
    assert f"Receipt {second.receipt.number}" in pdf_pages_text(stored_pdf(second))[0]
    assert second.receipt.number == f"R-{second.receipt.pk:08d}"


def test_twenty_lines_fit_on_one_a4_page():
    pdf = render_receipt_pdf(document_with_lines(20))

    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width), 2), round(float(box.height), 2)) == A4_POINTS
    assert "Total" in pdf_pages_text(pdf)[0]


def test_a_sixty_line_receipt_runs_over_pages_with_the_table_header_and_page_numbers_on_each():
    pages = pdf_pages_text(render_receipt_pdf(document_with_lines(60)))

    assert len(pages) > 1
    for number, text in enumerate(pages, start=1):
        assert TABLE_HEADER in text
        assert f"Page {number} of {len(pages)}" in text
        assert "Receipt R-00000007" in text
    everything = " ".join(pages)
    for i in range(1, 61):
        assert everything.count(f"SKU-{i:03d} Product {i:03d}") == 1
    assert "Total" in pages[-1] and "Total" not in pages[0].replace("Line total", "")


def test_the_receipt_embeds_its_dejavu_fonts():
    reader = PdfReader(io.BytesIO(render_receipt_pdf(document_with_lines(3))))

    fonts = {}
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descendant = font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font else font
            descriptor = descendant["/FontDescriptor"].get_object()
            fonts[str(font["/BaseFont"]).split("+")[-1]] = any(
                key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3")
            )
    assert fonts, "no fonts in the PDF"
    assert all(name.startswith("DejaVu") for name in fonts), fonts
    assert all(fonts.values()), f"fonts not embedded: {fonts}"


def test_a_product_name_with_markup_and_urls_is_printed_as_text_and_fetches_nothing(shopper, make_product, web_server):
    hostile = (
        f'<b>Bold</b><img src="file:///etc/passwd"><img src="{web_server.url}/pixel.png">'
        f'<link rel="stylesheet" href="{web_server.url}/evil.css">'
    )
    make_product("EVIL-1", on_hand=5, name=hostile)

    order = shopper.buys({"EVIL-1": 1})

    assert order.state == "COMPLETED"
    pdf = stored_pdf(order)
    text = "".join(pdf_pages_text(pdf)).replace(" ", "")
    assert hostile.replace(" ", "") in text  # every character of the name, as text
    assert images_in(pdf) == 0
    assert web_server.requests == []
    assert b"root:x:0:0" not in pdf


def test_the_renderer_refuses_any_resource_but_the_receipt_assets(web_server):
    # Markup that did reach the renderer (not through the escaped template) still fetches nothing.
    html = (
        f'<link rel="stylesheet" href="{ASSETS_DIR.as_uri()}/receipt.css">'
        '<img src="file:///etc/passwd">'
        f'<img src="{web_server.url}/pixel.png">'
        f'<img src="{ASSETS_DIR.as_uri()}/../../../../etc/hostname">'
        f'<link rel="stylesheet" href="{web_server.url}/evil.css">'
        "<p>hello</p>"
    )

    pdf = HTML(string=html, base_url=ASSETS_DIR.as_uri() + "/", url_fetcher=assets_fetcher()).write_pdf()

    assert web_server.requests == []
    assert images_in(pdf) == 0
    assert "Page 1 of 1" in pdf_pages_text(pdf)[0]  # receipt.css, the allowed asset, was loaded
    fetcher = assets_fetcher()
    for url in (
        "file:///etc/passwd",
        f"{web_server.url}/pixel.png",
        f"{ASSETS_DIR.as_uri()}/../../../../etc/passwd",
        f"{ASSETS_DIR.as_uri()}/%2e%2e/%2e%2e/settings.py",
        "data:text/css,body{}",
    ):
        with pytest.raises((BlockedResource, ValueError)):
            fetcher.fetch(url)
    assert web_server.requests == []


def word_boxes(pdf: bytes) -> list[tuple[str, float, float, float]]:
    """Every word of the first page as poppler places it: (text, left, right, top), in points."""
    xhtml = subprocess.run(["pdftotext", "-bbox", "-l", "1", "-", "-"], input=pdf, capture_output=True, check=True)
    return [
        (html.unescape(text), float(left), float(right), float(top))
        for left, top, right, text in re.findall(
            r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)</word>', xhtml.stdout.decode()
        )
    ]


def test_each_number_of_a_line_ends_under_its_heading_whatever_its_length():
    lines = (
        ReceiptLine("A-1", "Pin", 2, Decimal("0.50"), Decimal("1.00")),
        ReceiptLine("LONGSKU-0042", "Desk", 12, Decimal("1234.00"), Decimal("14808.00")),
        ReceiptLine(
            "B-2",
            "Lamp with a linen shade, a brass stem and an oak base, its name long enough to wrap in its cell",
            3,
            Decimal("9.99"),
            Decimal("29.97"),
        ),
    )
    words = word_boxes(render_receipt_pdf(document_with_lines(0, lines=lines)))

    def right_edge(text: str) -> float:
        return next(right for word, _, right, _ in words if word == text)

    def left_edge(text: str) -> float:
        return next(left for word, left, _, _ in words if word == text)

    for quantity, unit, total in (("2", "0.50", "1.00"), ("12", "1234.00", "14808.00"), ("3", "9.99", "29.97")):
        row = next(top for word, _, _, top in words if word == total)
        in_row = {word: right for word, _, right, top in words if abs(top - row) < 1}
        assert in_row[quantity] == pytest.approx(right_edge("Qty"), abs=0.5)
        assert in_row[unit] == pytest.approx(right_edge("price"), abs=0.5)
        assert in_row[total] == pytest.approx(right_edge("total"), abs=0.5)
    item_column = left_edge("Item")
    assert left_edge("Pin") == pytest.approx(item_column, abs=1.5)
    assert left_edge("Desk") == pytest.approx(item_column, abs=1.5)
    lamp = next(top for word, _, _, top in words if word == "Lamp")
    second_line = min(left for word, left, _, top in words if lamp + 5 < top < lamp + 15)
    assert left_edge("Lamp") == pytest.approx(item_column, abs=1.5)
    assert second_line == pytest.approx(item_column, abs=1.5)  # the wrapped name stays in its column


def test_white_space_in_a_product_name_is_folded_as_html_folds_it():
    line = ReceiptLine("MUG-001", "Blue\nmug\t\tlarge", 1, Decimal("2.50"), Decimal("2.50"))
    words = word_boxes(render_receipt_pdf(document_with_lines(0, lines=(line,))))

    rows = {word: top for word, _, _, top in words if word in ("Blue", "mug", "large")}
    assert len(set(rows.values())) == 1  # one line, not broken where the name had a newline
    spacing = [left for word, left, _, _ in words if word in ("mug", "large")]
    assert spacing[1] - spacing[0] < 30  # one space between them, not a tab stop's worth


def test_a_web_process_with_every_url_loaded_has_not_loaded_the_pdf_renderer():
    # WeasyPrint is about 40 MB of a process: the shop's web workers link to receipts but
    # never render one (the cluster does), so they must not carry it.
    probe = (
        "import sys, django; django.setup(); "
        "from django.urls import get_resolver; get_resolver().url_patterns; "
        "import config.wsgi, orders.apis, receipts.services, backoffice.actions; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('weasyprint', 'pydyf', 'fontTools')))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout

    assert loaded.strip().splitlines()[-1] == "[]"
