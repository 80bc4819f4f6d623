"""Receipt rendering: a receipt's content in, PDF bytes out. Nothing is read or stored here.

The content is a plain value (`ReceiptDocument`), so rendering needs no database and the
same content always gives the same page layout. Shop data is escaped by the template
engine, and WeasyPrint may load only the project's own receipt assets: a product name
carrying markup or a URL is printed as text and fetches nothing.

WeasyPrint itself (receipts/pdf.py) is imported by the first PDF rendered, not with this
module: the shop's web workers import this one (through the receipt links) and never render,
and WeasyPrint with its fonts and images libraries is some 40 MB of each process that loads it.
"""

import functools
import logging
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone


@dataclass(frozen=True)
class ReceiptLine:
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal


@dataclass(frozen=True)
class ReceiptDocument:
    """Everything a receipt shows, in the shop's words."""

    number: str
    issued_at: datetime
    shop_name: str
    shop_address: str
    shop_tax_id: str
    order_reference: str
    ordered_at: datetime
    customer_email: str
    currency: str
    lines: tuple[ReceiptLine, ...]
    subtotal: Decimal
    tax_rate_percent: str  # "20" for 20%; printed even when "0"
    tax: Decimal
    total: Decimal
    card_brand: str = ""
    card_last4: str = ""
    payment_reference: str = ""


@dataclass(frozen=True)
class CreditNoteDocument:
    """Everything a credit note shows: the receipt it corrects, its lines, what went back and why."""

    number: str
    issued_at: datetime
    shop_name: str
    shop_address: str
    shop_tax_id: str
    order_reference: str
    receipt_number: str  # "" when the order never had a receipt stored
    customer_email: str
    currency: str
    lines: tuple[ReceiptLine, ...]
    order_total: Decimal
    amount: Decimal
    refunded_total: Decimal
    reason: str  # "" when the reason is not for the shopper's eyes


# The numbers of a line (quantity, unit price, line total) are one table cell, not three: a
# cell is the costliest box WeasyPrint lays out. They stay in their columns because every
# character of an amount is as wide as a digit (DejaVu Sans's digits and U+2007, the figure
# space, are all 0.636 em) except its point (U+2008, the punctuation space, is as wide), so
# an amount padded with figure spaces to AMOUNT_DIGITS digits is as wide as its column
# (receipt.css sets `.price` to the same width) and ends under its heading.
AMOUNT_DIGITS = 12
FIGURE_SPACE = "\u2007"
PUNCTUATION_SPACE = "\u2008"


def amount_field(amount: Decimal) -> str:
    """The amount right-aligned in a field as wide as a price column (AMOUNT_DIGITS digits
    and a point), padded with spaces as wide as the characters they stand for."""
    text = str(amount)
    digits = len(text) - text.count(".")
    point = "" if "." in text else PUNCTUATION_SPACE
    return FIGURE_SPACE * max(AMOUNT_DIGITS - digits, 0) + point + text


def line_figures(line: ReceiptLine) -> str:
    """A line's quantity, unit price and line total as the text of its one numbers cell."""
    return f"{line.quantity}{amount_field(line.unit_price)}{amount_field(line.line_total)}"


def printed_lines(lines: tuple[ReceiptLine, ...]) -> list[tuple[ReceiptLine, str]]:
    """Each line with the text of its numbers cell, as receipt.html and credit_note.html print them.

    The item's cell keeps its white space (`pre-wrap`, for the tab before the item), so runs of
    white space in a name (a newline, a tab) are folded to one space here, as HTML would."""
    return [(replace(line, name=" ".join(line.name.split())), line_figures(line)) for line in lines]


def render_receipt_html(document: ReceiptDocument) -> str:
    """The receipt as HTML, every piece of shop data escaped."""
    return render_to_string("receipts/receipt.html", {"receipt": document, "lines": printed_lines(document.lines)})


def render_receipt_pdf(document: ReceiptDocument) -> bytes:
    """The receipt as PDF bytes: A4, the line table's header repeated on every page."""
    from receipts.pdf import html_to_pdf  # WeasyPrint loads where PDFs are made (module docstring)

    return html_to_pdf(render_receipt_html(document))


def render_credit_note_pdf(document: CreditNoteDocument) -> bytes:
    """The credit note as PDF bytes, in the receipt's layout and stylesheet."""
    from receipts.pdf import html_to_pdf

    return html_to_pdf(
        render_to_string("receipts/credit_note.html", {"note": document, "lines": printed_lines(document.lines)})
    )


@functools.cache
def warm_up(**signal_arguments) -> None:
    """Render a few sample receipts when a cluster worker starts, so that loading fonts and
    filling WeasyPrint's caches (about 100 ms, BENCHMARKS.md) is not paid by its first order."""
    now = timezone.now()
    line = ReceiptLine(sku="SKU-1", name="Item", quantity=1, unit_price=Decimal("1.00"), line_total=Decimal("1.00"))
    sample = ReceiptDocument(
        number="R-00000000",
        issued_at=now,
        shop_name=settings.SHOP_NAME,
        shop_address=settings.SHOP_ADDRESS,
        shop_tax_id=settings.SHOP_TAX_ID,
        order_reference="ord_sample",
        ordered_at=now,
        customer_email="shopper@example.com",
        currency="USD",
        lines=(line,),
        subtotal=Decimal("1.00"),
        tax_rate_percent="0",
        tax=Decimal("0.00"),
        total=Decimal("1.00"),
    )
    try:
        for _ in range(3):  # the caches fill over the first few documents, not the first one
            render_receipt_pdf(sample)
    except Exception:  # a worker must start whatever happens here; its first receipt is merely slower
        logging.getLogger(__name__).warning("receipt renderer warm-up failed", exc_info=True)
