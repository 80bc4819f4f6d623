"""The Stripe adapter: PaymentIntents with manual capture. The only module that imports `stripe`.

Every call is explicit about what a payment call must never leave to defaults: an
idempotency key derived from the order and the operation (so the SDK's own network
retries, a retried step and a second worker all reuse it, and Stripe replays the first
answer instead of charging again), a timeout, and a number of network retries.

Stripe's errors become the interface's results and exceptions here and nowhere else:
a card error is a DECLINED result carrying the decline code and a message the shopper
may see; rate limits, connection failures and 5xx are transient; bad keys and missing
permissions are our configuration's fault and fail loudly.
"""

import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import stripe
from django.conf import settings

from payments.gateways.base import (
    GatewayConfigurationError,
    GatewayError,
    GatewayResult,
    IntentStatus,
    PaymentMethodOption,
    TransientGatewayError,
)
from payments.gateways.declines import shopper_message

if TYPE_CHECKING:
    from stripe._base_address import BaseAddresses
    from stripe.params import (
        PaymentIntentCancelParams,
        PaymentIntentCaptureParams,
        PaymentIntentCreateParams,
        RefundCreateParams,
    )

logger = logging.getLogger(__name__)

ORDER_REFERENCE_KEY = "order_reference"

# Stripe's intent statuses as the interface knows them. `processing` and
# `requires_confirmation` are waits on something outside us, like `requires_action`:
# the order waits and a webhook, the sweeper or the expiry ends the wait.
STATUS_FOR = {
    "requires_capture": IntentStatus.AUTHORIZED,
    "succeeded": IntentStatus.CAPTURED,
    "requires_action": IntentStatus.REQUIRES_ACTION,
    "requires_confirmation": IntentStatus.REQUIRES_ACTION,
    "processing": IntentStatus.REQUIRES_ACTION,
    "requires_payment_method": IntentStatus.DECLINED,
    "canceled": IntentStatus.VOIDED,
}
EXPAND = ["latest_charge"]
# A PaymentMethod id as Stripe.js creates them (and Stripe's test ids, `pm_card_visa`).
PAYMENT_METHOD_ID = re.compile(r"pm_[A-Za-z0-9_]{1,200}")
# Stripe's test payment methods a page without Stripe.js may offer: none needs the shopper
# to authenticate, since only Stripe.js can run 3-D Secure.
TEST_PAYMENT_METHODS = (
    PaymentMethodOption("pm_card_visa", "Visa: payment succeeds"),
    PaymentMethodOption("pm_card_mastercard", "Mastercard: payment succeeds"),
    PaymentMethodOption("pm_card_chargeDeclined", "Card declined"),
    PaymentMethodOption("pm_card_chargeDeclinedInsufficientFunds", "Card declined: insufficient funds"),
)


class InvalidWebhook(Exception):
    """A webhook whose signature, timestamp or body cannot be trusted."""


def _as_dict(obj: Any) -> dict:
    """A StripeObject (or a plain dict from an error body) as a plain dict."""
    if obj is None or isinstance(obj, str):
        return {}
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def intent_result(intent: dict) -> GatewayResult:
    """The interface's view of a PaymentIntent (with `latest_charge` expanded where it exists)."""
    status = STATUS_FOR.get(intent["status"])
    if status is None:
        raise GatewayError(f"Unknown PaymentIntent status {intent['status']!r} of {intent['id']}.")
    charge = intent.get("latest_charge")
    charge = charge if isinstance(charge, dict) else {}
    card = (charge.get("payment_method_details") or {}).get("card") or {}
    refunded = int(charge.get("amount_refunded") or 0)
    if status == IntentStatus.CAPTURED and refunded:
        status = IntentStatus.REFUNDED
    decline_code = message = ""
    if status == IntentStatus.DECLINED:
        error = intent.get("last_payment_error") or {}
        decline_code = error.get("decline_code") or error.get("code") or "card_declined"
        message = shopper_message(decline_code)
    return GatewayResult(
        status=status,
        reference=intent["id"],
        decline_code=decline_code,
        shopper_message=message,
        card_brand=card.get("brand") or "",
        card_last4=card.get("last4") or "",
        client_secret=(intent.get("client_secret") or "") if status == IntentStatus.REQUIRES_ACTION else "",
        amount_refunded_minor=refunded,
        # The charge says until when the hold may be captured (Stripe: about 7 days for most cards).
        capture_before=datetime.fromtimestamp(card["capture_before"], tz=UTC)
        if status == IntentStatus.AUTHORIZED and card.get("capture_before")
        else None,
    )


def _declined(error: stripe.CardError) -> GatewayResult:
    """A card error is an answer, not a failure: the shopper's card said no."""
    body = (error.json_body or {}).get("error", {}) if isinstance(error.json_body, dict) else {}
    intent = _as_dict(body.get("payment_intent"))
    decline_code = body.get("decline_code") or body.get("code") or "card_declined"
    return GatewayResult(
        status=IntentStatus.DECLINED,
        reference=intent.get("id", ""),
        decline_code=decline_code,
        shopper_message=shopper_message(decline_code),
    )


class StripeGateway:
    name = "stripe"

    def __init__(
        self,
        *,
        api_key: str,
        api_base: str = "",
        timeout: float = 20.0,
        max_network_retries: int = 2,
        live: bool = False,
    ):
        self.live = live
        base_addresses: BaseAddresses | None = {"api": api_base.rstrip("/")} if api_base else None
        self.client = stripe.StripeClient(
            api_key,
            base_addresses=base_addresses,
            max_network_retries=max_network_retries,
            # (connect, read): a provider that does not answer must not hold a worker for long.
            http_client=stripe.RequestsClient(timeout=(min(timeout, 5.0), timeout)),
        )

    @classmethod
    def from_settings(cls) -> "StripeGateway":
        return cls(
            api_key=settings.STRIPE_SECRET_KEY,
            live=settings.STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_")),
            api_base=settings.STRIPE_API_BASE,
            timeout=settings.STRIPE_TIMEOUT_SECONDS,
            max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
        )

    # --- the interface ------------------------------------------------------------------

    def check_payment_method(self, payment_method: str) -> str:
        """Only the id's form: whether Stripe knows the method takes a network call, made at payment."""
        if PAYMENT_METHOD_ID.fullmatch(payment_method):
            return ""
        return "Not a card payment method: expected the id Stripe.js gives (pm_...)."

    def test_payment_methods(self) -> tuple[PaymentMethodOption, ...]:
        return () if self.live else TEST_PAYMENT_METHODS

    def authorize(
        self, *, order_reference: str, amount_minor: int, currency: str, payment_method: str, idempotency_key: str
    ) -> GatewayResult:
        params: PaymentIntentCreateParams = {
            "amount": amount_minor,
            "currency": currency.lower(),
            "payment_method": payment_method,
            # Cards only, so no redirect and no return_url; `payment_method_types` is refused
            # (400) from API version 2026-09-30.endive on, which this SDK pins.
            "allowed_payment_method_types": ["card"],
            "confirm": True,
            "capture_method": "manual",
            "description": f"Order {order_reference}",
            "metadata": {ORDER_REFERENCE_KEY: order_reference},
            "expand": EXPAND,
        }
        try:
            intent = self._call(
                "authorize",
                lambda: self.client.v1.payment_intents.create(params, _options(idempotency_key)),
                passthrough=(stripe.CardError,),
            )
        except stripe.CardError as error:
            return _declined(error)
        return intent_result(intent)

    def capture(self, *, provider_reference: str, amount_minor: int, idempotency_key: str) -> GatewayResult:
        params: PaymentIntentCaptureParams = {"amount_to_capture": amount_minor, "expand": EXPAND}
        try:
            intent = self._call(
                "capture",
                lambda: self.client.v1.payment_intents.capture(provider_reference, params, _options(idempotency_key)),
                passthrough=(stripe.InvalidRequestError,),
            )
        except stripe.InvalidRequestError as error:
            # Captured already under another key (a manager in the dashboard): take the current view.
            current = self._current_after(error, provider_reference)
            if current.status in (IntentStatus.CAPTURED, IntentStatus.REFUNDED):
                return current
            raise GatewayError(f"Cannot capture {provider_reference}: {error.user_message}") from error
        return intent_result(intent)

    def void(self, *, provider_reference: str, idempotency_key: str) -> GatewayResult:
        params: PaymentIntentCancelParams = {"cancellation_reason": "abandoned", "expand": EXPAND}
        try:
            intent = self._call(
                "void",
                lambda: self.client.v1.payment_intents.cancel(provider_reference, params, _options(idempotency_key)),
                passthrough=(stripe.InvalidRequestError,),
            )
        except stripe.InvalidRequestError as error:
            current = self._current_after(error, provider_reference)
            if current.status == IntentStatus.VOIDED:
                return current
            # Captured before the void reached it: the caller refunds instead.
            raise GatewayError(f"Cannot cancel {provider_reference}: {error.user_message}") from error
        return intent_result(intent)

    def refund(self, *, provider_reference: str, amount_minor: int, idempotency_key: str) -> GatewayResult:
        params: RefundCreateParams = {"payment_intent": provider_reference, "amount": amount_minor}
        try:
            self._call(
                "refund",
                lambda: self.client.v1.refunds.create(params, _options(idempotency_key)),
                passthrough=(stripe.InvalidRequestError,),
            )
        except stripe.InvalidRequestError as error:
            current = self._current_after(error, provider_reference)
            if error.code == "charge_already_refunded" and current.status == IntentStatus.REFUNDED:
                return current
            raise GatewayError(f"Cannot refund {provider_reference}: {error.user_message}") from error
        return self.retrieve(provider_reference=provider_reference)

    def find_authorization(self, *, order_reference: str, idempotency_key: str) -> GatewayResult | None:
        """The intent created for this order when the authorisation's answer was lost.

        The newest intents are listed first (a consistent read: the lost one was created
        minutes ago); search, which may lag by a minute, covers older ones.
        """
        recent = self._call("find_authorization", lambda: self.client.v1.payment_intents.list({"limit": 100}))
        intents = [i for i in _as_dict(recent).get("data", []) if _order_reference(i) == order_reference]
        if not intents:
            query = f"metadata['{ORDER_REFERENCE_KEY}']:'{order_reference}'"
            found = self._call(
                "find_authorization", lambda: self.client.v1.payment_intents.search({"query": query, "limit": 10})
            )
            intents = _as_dict(found).get("data", [])
        if not intents:
            return None
        if len(intents) > 1:
            logger.error("order %s has %d payment intents at Stripe", order_reference, len(intents))
        return self.retrieve(provider_reference=intents[0]["id"])

    def retrieve(self, *, provider_reference: str) -> GatewayResult:
        intent = self._call(
            "retrieve", lambda: self.client.v1.payment_intents.retrieve(provider_reference, {"expand": EXPAND})
        )
        return intent_result(intent)

    # --- errors -------------------------------------------------------------------------

    def _call(self, operation: str, request: Callable[[], Any], *, passthrough: tuple = ()) -> dict:
        """Run one request, turning Stripe's failures into the interface's exceptions.

        The errors named in `passthrough` are left for the operation to judge.
        """
        try:
            return _as_dict(request())
        except passthrough:
            raise
        except (stripe.AuthenticationError, stripe.PermissionError) as error:
            logger.error("Stripe refused our credentials during %s: %s", operation, error.user_message)
            raise GatewayConfigurationError(f"Stripe {operation}: {error.user_message}") from error
        except (stripe.RateLimitError, stripe.APIConnectionError) as error:
            raise TransientGatewayError(f"Stripe {operation}: {error.user_message}") from error
        except stripe.IdempotencyError as error:
            # The same key with other parameters: a bug of ours, never the shopper's.
            logger.error("Stripe idempotency error during %s: %s", operation, error.user_message)
            raise GatewayError(f"Stripe {operation}: {error.user_message}") from error
        except stripe.APIError as error:
            if error.http_status is None or error.http_status >= 500:
                raise TransientGatewayError(f"Stripe {operation}: {error.user_message}") from error
            raise GatewayError(f"Stripe {operation}: {error.user_message}") from error
        except stripe.StripeError as error:
            raise GatewayError(f"Stripe {operation}: {error.user_message}") from error

    def _current_after(self, error: stripe.InvalidRequestError, provider_reference: str) -> GatewayResult:
        """The intent's current view after a refused request, or the refusal itself when it is gone."""
        if error.http_status == 404:
            raise GatewayError(f"No such payment intent {provider_reference}") from error
        return self.retrieve(provider_reference=provider_reference)


def _options(idempotency_key: str) -> stripe.RequestOptions:
    return {"idempotency_key": idempotency_key}


def _order_reference(intent: dict) -> str:
    return (intent.get("metadata") or {}).get(ORDER_REFERENCE_KEY, "")


# --- webhooks --------------------------------------------------------------------------


def verify_webhook(payload: bytes, signature_header: str, *, secret: str, tolerance: int) -> dict:
    """The event a webhook delivers, once its signature over the raw body checks out.

    Refuses a body signed with another secret, a body changed after signing, and a
    signature older than `tolerance` seconds (a replay).
    """
    if not secret:
        raise InvalidWebhook("Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET).")
    try:
        stripe.WebhookSignature.verify_header(payload, signature_header, secret, tolerance)
        event = json.loads(payload)
    except stripe.SignatureVerificationError as error:
        raise InvalidWebhook(str(error.user_message)) from error
    except (UnicodeDecodeError, ValueError) as error:
        raise InvalidWebhook("The body is not JSON.") from error
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and isinstance((event.get("data") or {}).get("object"), dict)
    ):
        raise InvalidWebhook("The body is not a Stripe event.")
    return event


def event_order_reference(obj: dict) -> str:
    """The order reference an event's PaymentIntent carries in its metadata, if any."""
    return _order_reference(obj)
