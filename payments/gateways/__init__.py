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
    raise ImproperlyConfigured(f"Unknown PAYMENT_GATEWAY {settings.PAYMENT_GATEWAY!r}: use 'simulated'.")
