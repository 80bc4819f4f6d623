"""What a product's SKU, currency and price may be: one set of rules for the product form,
the CSV import and anything else that writes the catalog (docs/catalog.md lists them).

- A SKU is 1 to 64 characters of the alphabet `A-Z a-z 0-9 - _ .`, starting with a letter or
  a digit: it travels in URLs, CSV files, emails and Stripe's metadata unquoted.
- A currency is an ISO 4217 code of money (the published table, from the `iso4217`
  package; funds, metals and test codes such as XAU or XTS are not money a shop takes),
  narrowed to `SHOP_CURRENCIES` where the shop sets it.
- A price is more than zero, in whole cents.
"""

import re
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from iso4217 import Currency

SKU_ALPHABET = "A-Z a-z 0-9 - _ ."
SKU_PATTERN = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


@cache
def iso_currencies() -> frozenset[str]:
    """The codes of ISO 4217 that are money: those with minor units (not funds, metals, XTS, XXX)."""
    return frozenset(currency.code for currency in Currency if currency.exponent is not None)


def shop_currencies() -> frozenset[str]:
    """The currencies this shop prices in: SHOP_CURRENCIES, or every ISO 4217 currency."""
    return frozenset(settings.SHOP_CURRENCIES) or iso_currencies()


def validate_sku(sku: str) -> None:
    """Refuse a SKU outside the documented alphabet (ValidationError naming it)."""
    if not SKU_PATTERN.match(sku or ""):
        raise ValidationError(
            "%(sku)r is not a SKU: 1 to 64 characters of A-Z, a-z, 0-9, '-', '_' and '.', "
            "starting with a letter or a digit.",
            code="invalid_sku",
            params={"sku": sku},
        )


def validate_currency(currency: str) -> None:
    """Refuse a code that is not an ISO 4217 currency, or not one of SHOP_CURRENCIES."""
    if currency not in iso_currencies():
        raise ValidationError(
            "%(currency)r is not an ISO 4217 currency code (such as USD, EUR, JPY).",
            code="invalid_currency",
            params={"currency": currency},
        )
    allowed = shop_currencies()
    if currency not in allowed:
        raise ValidationError(
            "This shop prices in %(allowed)s, not %(currency)s (SHOP_CURRENCIES).",
            code="currency_not_sold",
            params={"currency": currency, "allowed": ", ".join(sorted(allowed))},
        )


def validate_price(price: Decimal) -> None:
    """Refuse a price of zero or less, or one with fractions of a cent."""
    if not price.is_finite() or price <= 0 or price != price.quantize(Decimal("0.01")):
        raise ValidationError(
            "A price is more than 0, with at most two decimals (got %(price)s).",
            code="invalid_price",
            params={"price": price},
        )


def product_field_errors(*, sku: str, currency: str, price: Decimal) -> dict[str, list[str]]:
    """Every rule these values break, by field ({} when they all hold)."""
    errors: dict[str, list[str]] = {}
    checks: tuple[tuple[str, Callable[[Any], None], object], ...] = (
        ("sku", validate_sku, sku),
        ("currency", validate_currency, currency),
        ("price", validate_price, price),
    )
    for name, validate, value in checks:
        try:
            validate(value)
        except ValidationError as error:
            errors[name] = error.messages
    return errors
