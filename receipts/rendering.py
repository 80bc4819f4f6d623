"""Receipt rendering: an order in, PDF bytes out. Nothing is stored here."""

import functools
import logging
from decimal import Decimal
from types import SimpleNamespace

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone
from weasyprint import HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher

logger = logging.getLogger(__name__)

ASSETS_DIR = settings.BASE_DIR / "receipts" / "static"


class BlockedResource(ValueError):
    pass


class ProjectAssetsFetcher(URLFetcher):
    """WeasyPrint may load the project's own receipt assets and nothing else: no network,
    no other file, so shop data that smuggles in a URL cannot make the renderer fetch it."""

    def fetch(self, url, headers=None):
        root = ASSETS_DIR.as_uri() + "/"
        if url.startswith(root) and ".." not in url and "%" not in url:
            return super().fetch(url, headers)
        raise BlockedResource(f"receipt rendering refused to fetch {url}")


def render_receipt_pdf(order, *, receipt_number: str, issued_at) -> bytes:
    """The receipt of an order as PDF bytes."""
    from payments.models import Payment

    return _render(
        order=order,
        lines=list(order.lines.all()),
        payment=Payment.objects.filter(order=order).first(),
        receipt_number=receipt_number,
        issued_at=issued_at,
    )


def _render(**context) -> bytes:
    html = render_to_string(
        "receipts/receipt.html",
        {
            **context,
            "shop": {"name": settings.SHOP_NAME, "address": settings.SHOP_ADDRESS, "tax_id": settings.SHOP_TAX_ID},
            "tax_rate_percent": settings.SHOP_TAX_RATE * 100,
        },
    )
    fetcher = ProjectAssetsFetcher(allowed_protocols=["file"])
    document = HTML(string=html, base_url=ASSETS_DIR.as_uri() + "/", url_fetcher=fetcher)
    return document.write_pdf(font_config=_font_config())


@functools.cache
def warm_up(**signal_arguments) -> None:
    """Render a sample receipt when a cluster worker starts, so that loading fonts and code
    (about 100 ms, BENCHMARKS.md) is not paid by the first order the worker serves."""
    line = SimpleNamespace(sku="SKU-1", name="Item", quantity=1, unit_price=Decimal("1.00"), line_total=Decimal("1.00"))
    order = SimpleNamespace(
        reference="ord_sample", email="shopper@example.com", currency="USD", subtotal=1, tax=0, total=1
    )
    try:
        # Font, shaping and cffi caches fill over the first few documents, not the first one.
        for _ in range(3):
            _render(order=order, lines=[line], payment=None, receipt_number="R-00000000", issued_at=timezone.now())
    except Exception:  # a worker must start whatever happens here; the first receipt is merely slower
        logger.warning("receipt renderer warm-up failed", exc_info=True)


@functools.cache
def _font_config() -> FontConfiguration:
    """One font configuration per process: building it (fontconfig's font list) for every
    receipt was a sixth of each render (BENCHMARKS.md)."""
    return FontConfiguration()
