"""Receipt rendering: an order in, PDF bytes out. Nothing is stored here."""

import functools

from django.conf import settings
from django.template.loader import render_to_string
from weasyprint import HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher

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

    html = render_to_string(
        "receipts/receipt.html",
        {
            "order": order,
            "lines": list(order.lines.all()),
            "payment": Payment.objects.filter(order=order).first(),
            "receipt_number": receipt_number,
            "issued_at": issued_at,
            "shop": {"name": settings.SHOP_NAME, "address": settings.SHOP_ADDRESS, "tax_id": settings.SHOP_TAX_ID},
            "tax_rate_percent": settings.SHOP_TAX_RATE * 100,
        },
    )
    fetcher = ProjectAssetsFetcher(allowed_protocols=["file"])
    document = HTML(string=html, base_url=ASSETS_DIR.as_uri() + "/", url_fetcher=fetcher)
    return document.write_pdf(font_config=_font_config())


@functools.cache
def _font_config() -> FontConfiguration:
    """One font configuration per process: building it (fontconfig's font list) for every
    receipt was a sixth of each render (BENCHMARKS.md)."""
    return FontConfiguration()
