"""Receipt rendering on its own: time and memory per receipt, in a fresh process.

Run by bench/scenarios.py as `python -m bench.receipts N` with the run's environment;
prints one JSON line. The first render pays for loading fonts (cold); the median is taken
over the N renders after it (warm), as a long-lived cluster worker sees them.

The shop's receipt is rendered beside the template it replaced (bench/fixtures/receipt_2026_11,
rendered the way it was: its stylesheet linked, fetched and parsed for every receipt), the two
alternating render by render, so their ratio is measured on the same machine at the same moment
whatever else the machine is doing. Python calls per render (cProfile, deterministic, one
render of each after the timed ones) are the cross-check a loaded machine cannot move.
"""

import cProfile
import dataclasses
import json
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

OLD_TEMPLATE_DIR = Path(__file__).resolve().parent / "fixtures" / "receipt_2026_11"
# The first page of each template's receipt, to compare the two looks side by side.
PNG_DIR = Path(__file__).resolve().parent / "results"


def _mb(kib: int) -> float:
    return round(kib * 1024 / 1e6, 1)


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def render_old_receipt_pdf(document) -> bytes:
    """A receipt through the 2026-11 template and stylesheet, as the shop rendered it then."""
    from django.template import engines
    from weasyprint import HTML

    from receipts.pdf import _font_config

    template = engines["django"].from_string((OLD_TEMPLATE_DIR / "receipt.html").read_text())
    html = HTML(string=template.render({"receipt": document}), base_url=OLD_TEMPLATE_DIR.as_uri() + "/")
    return html.write_pdf(font_config=_font_config())


def _timed(render, document) -> tuple[float, float]:
    started, cpu_started = time.perf_counter(), time.process_time()
    render(document)
    return (time.perf_counter() - started) * 1000, (time.process_time() - cpu_started) * 1000


def _python_calls(render, document) -> int:
    """Python function calls in one render: a count, not a timing, so load does not move it."""
    profile = cProfile.Profile()
    profile.runcall(render, document)
    return pstats.Stats(profile).total_calls


def _first_page_png(pdf: bytes, name: str) -> str:
    """The PDF's first page as bench/results/<name>.png (pdftoppm, 100 dpi); "" without poppler."""
    if not shutil.which("pdftoppm"):
        return ""
    target = PNG_DIR / name
    subprocess.run(
        ["pdftoppm", "-png", "-r", "100", "-f", "1", "-l", "1", "-singlefile", "-", str(target)], input=pdf, check=True
    )
    return str(target.with_suffix(".png").relative_to(PNG_DIR.parent.parent))


def main(renders: int) -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.utils import timezone

    from inventory.models import Product
    from orders.models import Order, OrderLine
    from receipts.models import Receipt
    from receipts.rendering import render_receipt_pdf
    from receipts.services import receipt_document

    # A typical receipt: three lines of products from the bench catalog.
    # Its totals add up, as a real order's do, so the bench's PNGs read like a real receipt.
    products = list(Product.objects.order_by("pk")[:3])
    subtotal = sum((p.price * 2 for p in products), Decimal("0"))
    order = Order.objects.create(
        email="receipts@example.com",
        currency="USD",
        subtotal=subtotal,
        total=subtotal,
        payment_method="pm_card_visa",
        request_hash="bench",
    )
    OrderLine.objects.bulk_create(
        OrderLine(
            order=order, product=p, sku=p.sku, name=p.name, quantity=2, unit_price=p.price, line_total=p.price * 2
        )
        for p in products
    )
    document = receipt_document(order, Receipt.objects.create(order=order))
    baseline_rss = _rss_kib()

    started = time.perf_counter()
    pdf = render_receipt_pdf(document)
    cold_ms = (time.perf_counter() - started) * 1000
    after_cold_peak = _peak_kib()
    old_pdf = render_old_receipt_pdf(document)  # its first render too, out of the warm figures

    times, cpu_times, old_times, old_cpu_times = [], [], [], []
    for n in range(renders):
        numbered = dataclasses.replace(document, number=f"R-{n + 2:08d}", issued_at=timezone.now())
        pair = [(render_receipt_pdf, times, cpu_times), (render_old_receipt_pdf, old_times, old_cpu_times)]
        if n % 2:  # alternate which goes first, so neither always pays for the other's garbage
            pair.reverse()
        for render, wall, cpu in pair:
            wall_ms, cpu_ms = _timed(render, numbered)
            wall.append(wall_ms)
            cpu.append(cpu_ms)
    calls, old_calls = _python_calls(render_receipt_pdf, document), _python_calls(render_old_receipt_pdf, document)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    median_cpu_ms, old_median_cpu_ms = statistics.median(cpu_times), statistics.median(old_cpu_times)
    return {
        "renders": renders,
        "pdf_bytes": len(pdf),
        "cold_ms": round(cold_ms, 1),
        "median_ms": round(statistics.median(times), 2),
        "p90_ms": round(sorted(times)[int(0.9 * (len(times) - 1))], 2),
        # CPU time is what a render costs whatever else the machine is doing.
        "median_cpu_ms": round(median_cpu_ms, 2),
        "old_template": {
            "pdf_bytes": len(old_pdf),
            "median_ms": round(statistics.median(old_times), 2),
            "median_cpu_ms": round(old_median_cpu_ms, 2),
            "python_calls": old_calls,
        },
        "python_calls": calls,
        "new_over_old_cpu": round(median_cpu_ms / old_median_cpu_ms, 3),
        "new_over_old_calls": round(calls / old_calls, 3),
        "pngs": {"new": _first_page_png(pdf, "receipt-new"), "old": _first_page_png(old_pdf, "receipt-2026-11")},
        "baseline_rss_mb": _mb(baseline_rss),
        "peak_rss_mb": _mb(_peak_kib()),
        "first_render_growth_mb": _mb(after_cold_peak - baseline_rss),
        "warm_renders_growth_mb": _mb(_peak_kib() - after_cold_peak),
        "cpu_seconds": round(cpu.ru_utime + cpu.ru_stime, 2),
    }


if __name__ == "__main__":
    print("BENCH_JSON " + json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)))
