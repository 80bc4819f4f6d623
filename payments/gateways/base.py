"""The payment gateway interface: what the pipeline asks of any payment provider.

Every call carries an idempotency key derived from the order and the operation, so a
retried call (after a timeout, or by a second worker) never charges twice. Providers turn
their own errors into these results and exceptions; nothing outside a gateway module sees
a provider's SDK.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class IntentStatus(StrEnum):
    AUTHORIZED = "authorized"  # funds held, awaiting capture
    CAPTURED = "captured"
    REQUIRES_ACTION = "requires_action"  # the shopper must authenticate (3-D Secure)
    DECLINED = "declined"
    VOIDED = "voided"
    REFUNDED = "refunded"


@dataclass(frozen=True)
class GatewayResult:
    status: IntentStatus
    reference: str = ""
    decline_code: str = ""
    shopper_message: str = ""
    card_brand: str = ""
    card_last4: str = ""
    client_secret: str = ""
    amount_refunded_minor: int = 0
    # When an authorisation's hold lapses (it can no longer be captured); None when not held.
    capture_before: datetime | None = None


@dataclass(frozen=True)
class PaymentMethodOption:
    """A payment method a test-mode page may offer in place of a card form."""

    id: str
    label: str


class GatewayError(Exception):
    """A gateway call that did not give an answer about the payment."""


class TransientGatewayError(GatewayError):
    """Worth retrying with the same idempotency key: timeouts, rate limits, 5xx."""


class GatewayConfigurationError(GatewayError):
    """Our fault, not the shopper's (bad keys, missing permissions): fail loudly, alarm."""


class PaymentGateway(Protocol):
    name: str

    def check_payment_method(self, payment_method: str) -> str:
        """Why this payment method can never be charged, in words a shopper reads; "" when it may be tried.

        Only what the gateway can tell without a network call: a placement refuses the
        method at once instead of an order failing later.
        """

    def test_payment_methods(self) -> tuple[PaymentMethodOption, ...]:
        """The methods a page may offer when it has no card form (test mode); none in live mode."""

    def authorize(
        self, *, order_reference: str, amount_minor: int, currency: str, payment_method: str, idempotency_key: str
    ) -> GatewayResult:
        """Hold the amount on the payment method; a decline is a result, not an exception."""

    def capture(self, *, provider_reference: str, amount_minor: int, idempotency_key: str) -> GatewayResult:
        """Take the held amount."""

    def void(self, *, provider_reference: str, idempotency_key: str) -> GatewayResult:
        """Release a hold that was never captured."""

    def refund(self, *, provider_reference: str, amount_minor: int, idempotency_key: str) -> GatewayResult:
        """Give back part or all of a captured amount."""

    def find_authorization(self, *, order_reference: str, idempotency_key: str) -> GatewayResult | None:
        """The intent an earlier authorisation created, when its answer was lost; None if none."""

    def retrieve(self, *, provider_reference: str) -> GatewayResult:
        """The provider's current view of a payment intent."""
