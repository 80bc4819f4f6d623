"""Choose the payment gateway named by the PAYMENT_GATEWAY setting."""

from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from payments.gateways.base import PaymentGateway


@cache
def get_gateway() -> PaymentGateway:
    """The configured gateway, built once per process."""
    if settings.PAYMENT_GATEWAY == "simulated":
        from payments.gateways.simulated import SimulatedGateway

        return SimulatedGateway()
    if settings.PAYMENT_GATEWAY == "stripe":
        from payments.gateways.stripe_gateway import StripeGateway

        return StripeGateway.from_settings()
    raise ImproperlyConfigured(f"Unknown PAYMENT_GATEWAY {settings.PAYMENT_GATEWAY!r}: use 'simulated' or 'stripe'.")


def forget_gateway(*, setting: str, **kwargs) -> None:
    """Build the gateway anew when its settings change (tests override them)."""
    if setting == "PAYMENT_GATEWAY" or setting.startswith("STRIPE_"):
        get_gateway.cache_clear()
