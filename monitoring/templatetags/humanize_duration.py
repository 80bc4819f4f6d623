"""Durations as the monitoring page writes them."""

from django import template

register = template.Library()


@register.filter
def seconds(value) -> str:
    """12.3 -> "12 s", 754 -> "12 min 34 s", 7300 -> "2 h 1 min"."""
    if value is None:
        return "–"
    total = int(round(float(value)))
    if total < 60:
        return f"{float(value):.1f} s" if float(value) < 10 else f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@register.filter
def milliseconds(value) -> str:
    if value is None:
        return "–"
    return f"{float(value):.0f} ms" if float(value) < 10_000 else seconds(float(value) / 1000)
