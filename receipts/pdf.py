"""HTML to PDF through WeasyPrint, for the receipts and credit notes of receipts/rendering.py.

Its own module so that WeasyPrint is loaded only by a process that makes a PDF (the cluster's
workers, a manager's refund), not by every process that imports the rendering module.
WeasyPrint may load the project's own receipt assets and nothing else.
"""

import functools

from django.conf import settings
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher

ASSETS_DIR = settings.BASE_DIR / "receipts" / "static" / "receipts"


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


def assets_fetcher() -> ProjectAssetsFetcher:
    """The only URL fetcher receipt rendering uses."""
    return ProjectAssetsFetcher(allowed_protocols=["file"], timeout=1)


def html_to_pdf(page: str) -> bytes:
    """A receipt's or a credit note's HTML as PDF bytes, with the receipt's stylesheet."""
    html = HTML(string=page, base_url=ASSETS_DIR.as_uri() + "/", url_fetcher=assets_fetcher())
    return html.write_pdf(stylesheets=[_stylesheet()], font_config=_font_config())


@functools.cache
def _font_config() -> FontConfiguration:
    """One font configuration per process: building it (fontconfig's font list) for every
    receipt was a sixth of each render (BENCHMARKS.md)."""
    return FontConfiguration()


@functools.cache
def _stylesheet() -> CSS:
    """The receipt's stylesheet, parsed once per process: parsing it for every receipt was a
    tenth of each render (BENCHMARKS.md). WeasyPrint applies a parsed `CSS` to any number of
    documents; it is given as a user stylesheet, which no author sheet overrides here."""
    return CSS(filename=ASSETS_DIR / "receipt.css", url_fetcher=assets_fetcher(), font_config=_font_config())
