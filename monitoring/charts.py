"""Charts drawn on the server as inline SVG: no script, no chart library, nothing fetched.

Pure functions of the numbers they are given, each returning safe markup for a template.
"""

from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString


def _n(number: float) -> str:
    """A coordinate as SVG takes it (format_html escapes its arguments, so numbers go in as text)."""
    return f"{number:.1f}"


BAR_COLOUR = "#417690"  # the admin's own blue
ALERT_COLOUR = "#ba2121"  # the admin's error red


def column_chart(
    columns: Sequence[tuple[str, float]], *, width: int = 720, height: int = 140, caption: str = ""
) -> SafeString:
    """Vertical columns, one per (label, value), on a common scale starting at zero; each
    column's label and value in its tooltip, the largest value written on the axis."""
    largest = max((value for _, value in columns), default=0)
    top = largest or 1
    step = width / max(len(columns), 1)
    plot = height - 16
    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {}</title></rect>',
        (
            (
                _n(i * step + 1),
                _n(plot - plot * value / top),
                _n(max(step - 2, 1)),
                _n(plot * value / top),
                BAR_COLOUR,
                label,
                value,
            )
            for i, (label, value) in enumerate(columns)
        ),
    )
    first, last = (columns[0][0], columns[-1][0]) if columns else ("", "")
    return format_html(
        '<svg class="chart" role="img" aria-label="{}" viewBox="0 0 {} {}" width="{}" height="{}">'
        '<line x1="0" y1="{}" x2="{}" y2="{}" stroke="#999"/>{}'
        '<text x="0" y="{}" font-size="11">{}</text><text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>'
        '<text x="2" y="11" font-size="11" fill="#666">max {}</text></svg>',
        caption, width, height, width, height, plot, width, plot, bars,
        height - 2, first, width, height - 2, last, largest,
    )  # fmt: skip


def meter(fraction: float, *, width: int = 120, alert_above: float = 1.0) -> SafeString:
    """A horizontal bar filled to `fraction` (0 to 1), red past `alert_above`."""
    fraction = min(max(fraction, 0.0), 1.0)
    colour = ALERT_COLOUR if fraction > alert_above else BAR_COLOUR
    return format_html(
        '<svg class="meter" role="img" aria-label="{}" viewBox="0 0 {} 10" width="{}" height="10">'
        '<rect width="{}" height="10" fill="#eee"/><rect width="{}" height="10" fill="{}"/></svg>',
        f"{fraction:.0%}", width, width, width, _n(width * fraction), colour,
    )  # fmt: skip
