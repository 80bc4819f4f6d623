"""How numbers and moments read to shoppers and staff, in emails, receipts and the back office."""

from datetime import datetime
from decimal import Decimal

from django.utils import timezone
from django.utils.dateformat import format as format_date


def format_percent(rate: Decimal | str | float) -> str:
    """A rate as shoppers read it: 0.2 -> "20", 0.075 -> "7.5", 0 -> "0" (percent)."""
    return format((Decimal(rate) * 100).normalize(), "f")


def format_moment_compact(moment: datetime | None) -> str:
    """A moment in the shop's time zone, short enough for a list's column: "6 Dec 2026, 14:05"."""
    return format_date(timezone.localtime(moment), "j M Y, H:i") if moment else "-"
