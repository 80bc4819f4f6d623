"""How numbers read to shoppers, in emails and on receipts alike."""

from decimal import Decimal


def format_percent(rate: Decimal | str | float) -> str:
    """A rate as shoppers read it: 0.2 -> "20", 0.075 -> "7.5", 0 -> "0" (percent)."""
    return format((Decimal(rate) * 100).normalize(), "f")
