"""Money at the provider's edge: Decimal amounts in, integer minor units out."""

from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 currencies Stripe charges without a minor unit.
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)


def minor_units_per_major(currency: str) -> int:
    """How many minor units make one major unit of the currency (1 for JPY, 100 for USD)."""
    return 1 if currency.upper() in ZERO_DECIMAL_CURRENCIES else 100


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Turn a Decimal amount into the integer the provider expects (12.34 USD -> 1234)."""
    factor = minor_units_per_major(currency)
    return int((amount * factor).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_minor_units(amount_minor: int, currency: str) -> Decimal:
    """Turn the provider's integer back into a Decimal amount (1234 USD -> 12.34)."""
    factor = minor_units_per_major(currency)
    return (Decimal(amount_minor) / factor).quantize(Decimal("0.01"))


def to_cents(amount: Decimal | int) -> Decimal:
    """A sum of stored amounts as the database stores one (10 -> 10.00): SQLite returns a
    Decimal column's SUM without its two places, and documents print it as it comes."""
    return Decimal(amount).quantize(Decimal("0.01"))
