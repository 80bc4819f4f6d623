"""A payment gateway that needs no network, honouring Stripe's test payment methods.

`pm_card_visa` (and the other `pm_card_<brand>` ids) authorise; `pm_card_chargeDeclined`
and its variants decline with Stripe's decline codes. Extra ids let tests and demos
provoke the failures a real provider has:

- `pm_sim_transient_error`: the first call fails before charging, later calls succeed;
- `pm_sim_timeout`: the first call charges but its answer is lost (a timeout);
- `pm_sim_unavailable`: the provider is down for this order: every call fails transiently
  for SIMULATED_GATEWAY_OUTAGE_SECONDS from the order's first call (so the order ends
  FAILED), then the provider is back and a redrive authorises (the redrive demo); with
  SIMULATED_GATEWAY_OUTAGE off it is never down, with the seconds at 0 it never comes back;
- `pm_sim_capture_unavailable`: authorises, but every capture fails transiently;
- `pm_sim_hang`: the first call charges, then its answer hangs for HANG_SECONDS (a stalled
  connection), long enough for a test to kill the worker mid-step.

The `pm_sim_*` ids work only where PAYMENT_SIMULATED_FAULTS allows them (debug mode,
tests, demos): elsewhere they decline like any unknown payment method, so nobody can hold
a worker with `pm_sim_hang` or provoke retries at will.

Its book is a database table so that every process (web, cluster workers) sees the same
intents, and idempotency keys behave as Stripe's do.
"""

import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from framework.inserts import insert_if_absent
from payments.gateways.base import (
    GatewayError,
    GatewayResult,
    IntentStatus,
    PaymentMethodOption,
    TransientGatewayError,
)
from payments.gateways.declines import shopper_message
from payments.models import SimulatedPaymentIntent

CARD_BRANDS = {
    "visa": ("visa", "4242"),
    "visa_debit": ("visa", "5556"),
    "mastercard": ("mastercard", "4444"),
    "amex": ("amex", "8431"),
    "discover": ("discover", "1117"),
    "jcb": ("jcb", "0505"),
}
# Stripe's declining test payment methods and the decline code each gives.
DECLINES = {
    "pm_card_chargeDeclined": "generic_decline",
    "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
    "pm_card_chargeDeclinedExpiredCard": "expired_card",
    "pm_card_chargeDeclinedIncorrectCvc": "incorrect_cvc",
    "pm_card_chargeDeclinedFraudulent": "fraudulent",
    "pm_card_chargeDeclinedProcessingError": "processing_error",
}
SUCCEEDING_FAULTS = {
    "pm_sim_unavailable",
    "pm_sim_transient_error",
    "pm_sim_timeout",
    "pm_sim_capture_unavailable",
    "pm_sim_hang",
}
HANG_SECONDS = 60
KNOWN_METHODS = frozenset(
    {f"pm_card_{brand}" for brand in CARD_BRANDS} | set(DECLINES) | SUCCEEDING_FAULTS | {"pm_sim_unavailable"}
)
# What a page without a card form offers, in the order a tester wants them.
TEST_PAYMENT_METHODS = (
    PaymentMethodOption("pm_card_visa", "Visa ending 4242: payment succeeds"),
    PaymentMethodOption("pm_card_mastercard", "Mastercard ending 4444: payment succeeds"),
    PaymentMethodOption("pm_card_chargeDeclined", "Card declined"),
    PaymentMethodOption("pm_card_chargeDeclinedInsufficientFunds", "Card declined: insufficient funds"),
    PaymentMethodOption("pm_card_chargeDeclinedExpiredCard", "Card declined: expired card"),
    PaymentMethodOption("pm_sim_transient_error", "Provider glitch, then success (the shop retries)"),
)

# Stripe's statuses, kept in the book.
REQUIRES_CAPTURE = "requires_capture"
SUCCEEDED = "succeeded"
CANCELED = "canceled"
DECLINED = "requires_payment_method"


def _card(payment_method: str) -> tuple[str, str]:
    brand = payment_method.removeprefix("pm_card_")
    return CARD_BRANDS.get(brand, ("visa", "4242"))


def _result(intent: SimulatedPaymentIntent) -> GatewayResult:
    status = {
        REQUIRES_CAPTURE: IntentStatus.AUTHORIZED,
        SUCCEEDED: IntentStatus.REFUNDED if intent.amount_refunded_minor else IntentStatus.CAPTURED,
        CANCELED: IntentStatus.VOIDED,
        DECLINED: IntentStatus.DECLINED,
    }[intent.status]
    brand, last4 = _card(intent.payment_method)
    decline_code = ""
    if intent.status == DECLINED:
        decline_code = DECLINES.get(intent.payment_method, "invalid_payment_method")
    return GatewayResult(
        status=status,
        reference=intent.reference,
        decline_code=decline_code,
        shopper_message=shopper_message(decline_code) if decline_code else "",
        card_brand=brand if status != IntentStatus.DECLINED else "",
        card_last4=last4 if status != IntentStatus.DECLINED else "",
        amount_refunded_minor=intent.amount_refunded_minor,
        # The simulated hold lasts PAYMENT_AUTHORIZATION_DAYS from the authorisation, as Stripe's about 7.
        capture_before=intent.created_at + timedelta(days=settings.PAYMENT_AUTHORIZATION_DAYS)
        if status == IntentStatus.AUTHORIZED
        else None,
    )


def _behaviour(payment_method: str) -> str:
    """The payment method as this gateway acts on it: a fault id only where faults are allowed."""
    if payment_method.startswith("pm_sim_") and not settings.PAYMENT_SIMULATED_FAULTS:
        return "pm_unknown"
    return payment_method


def _outage_goes_on(order_reference: str) -> bool:
    """Whether the simulated provider is still down for this order: an outage starts with
    the order's first call and lasts SIMULATED_GATEWAY_OUTAGE_SECONDS (0: for good), so each
    demo order fails and a redrive once the time is up succeeds."""
    if not settings.SIMULATED_GATEWAY_OUTAGE:
        return False
    lasts = settings.SIMULATED_GATEWAY_OUTAGE_SECONDS
    if not lasts:
        return True
    first_call = (
        SimulatedPaymentIntent.objects.filter(idempotency_key__startswith=f"{order_reference}:")
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return first_call is None or timezone.now() < first_call + timedelta(seconds=lasts)


def _is_chargeable(payment_method: str) -> bool:
    return payment_method in SUCCEEDING_FAULTS or payment_method.removeprefix("pm_card_") in CARD_BRANDS


def _authorization_fault(
    behaviour: str, order_reference: str, call_number: int
) -> tuple[TransientGatewayError | None, bool]:
    """The failure the `call_number`th authorisation call with this behaviour simulates, if
    any, and whether the intent is answered all the same (a failure before the charge took nothing)."""
    if (behaviour == "pm_sim_unavailable" and _outage_goes_on(order_reference)) or (
        behaviour == "pm_sim_transient_error" and call_number == 1
    ):
        return TransientGatewayError("Simulated connection error before the charge."), False
    if behaviour == "pm_sim_timeout" and call_number == 1:
        return TransientGatewayError("Simulated timeout: the charge went through, the answer was lost."), True
    return None, True


def _answer(behaviour: str) -> str:
    """The status an authorisation gives an intent still new."""
    return REQUIRES_CAPTURE if _is_chargeable(behaviour) else DECLINED


class SimulatedGateway:
    name = "simulated"

    def check_payment_method(self, payment_method: str) -> str:
        """The simulated gateway knows every id it honours: any other can only decline."""
        if payment_method in KNOWN_METHODS:
            return ""
        return f"Unknown payment method {payment_method!r}: choose one of the test payment methods."

    def test_payment_methods(self) -> tuple[PaymentMethodOption, ...]:
        return TEST_PAYMENT_METHODS

    def authorize(
        self, *, order_reference: str, amount_minor: int, currency: str, payment_method: str, idempotency_key: str
    ) -> GatewayResult:
        behaviour = _behaviour(payment_method)
        with transaction.atomic():
            # Nearly always the key's first call: one insert, the call counted and answered as
            # the intent is written; the unique key decides between racing calls.
            intent = SimulatedPaymentIntent(
                idempotency_key=idempotency_key,
                reference="pi_sim_" + secrets.token_hex(12),
                payment_method=payment_method,
                amount_minor=amount_minor,
                currency=currency,
                status="new",
                calls=1,
            )
            call_number = 1
            fault, charged = _authorization_fault(behaviour, order_reference, call_number)
            if charged:
                intent.status = _answer(behaviour)
            if not insert_if_absent(intent):
                intent = SimulatedPaymentIntent.objects.select_for_update().get(idempotency_key=idempotency_key)
                if (intent.amount_minor, intent.currency, intent.payment_method) != (
                    amount_minor,
                    currency,
                    payment_method,
                ):
                    raise GatewayError("Idempotency key reused with different parameters.")
                SimulatedPaymentIntent.objects.filter(pk=intent.pk).update(calls=F("calls") + 1)
                call_number = intent.calls + 1
                fault, charged = _authorization_fault(behaviour, order_reference, call_number)
                if charged and intent.status == "new":
                    intent.status = _answer(behaviour)
                    intent.save(update_fields=["status", "updated_at"])
        # Raised after the commit: a lost answer must not undo the charge it reports on.
        if fault:
            raise fault
        if behaviour == "pm_sim_hang" and call_number == 1:
            time.sleep(HANG_SECONDS)
        return _result(intent)

    def capture(self, *, provider_reference: str, amount_minor: int, idempotency_key: str) -> GatewayResult:
        with transaction.atomic():
            intent = self._intent(provider_reference)
            if _behaviour(intent.payment_method) == "pm_sim_capture_unavailable":
                raise TransientGatewayError("Simulated outage during capture.")
            if intent.status == REQUIRES_CAPTURE:
                intent.status = SUCCEEDED
                intent.save(update_fields=["status", "updated_at"])
            elif intent.status != SUCCEEDED:
                raise GatewayError(f"Cannot capture a payment intent in status {intent.status}.")
            return _result(intent)

    def void(self, *, provider_reference: str, idempotency_key: str) -> GatewayResult:
        with transaction.atomic():
            intent = self._intent(provider_reference)
            if intent.status == REQUIRES_CAPTURE:
                intent.status = CANCELED
                intent.save(update_fields=["status", "updated_at"])
            elif intent.status not in (CANCELED, DECLINED):
                raise GatewayError(f"Cannot cancel a payment intent in status {intent.status}.")
            return _result(intent)

    def refund(self, *, provider_reference: str, amount_minor: int, idempotency_key: str) -> GatewayResult:
        with transaction.atomic():
            intent = self._intent(provider_reference)
            if intent.status != SUCCEEDED:
                raise GatewayError(f"Cannot refund a payment intent in status {intent.status}.")
            if idempotency_key not in intent.refund_keys:
                intent.amount_refunded_minor = min(intent.amount_minor, intent.amount_refunded_minor + amount_minor)
                intent.refund_keys.append(idempotency_key)
                intent.save(update_fields=["amount_refunded_minor", "refund_keys", "updated_at"])
            return _result(intent)

    def find_authorization(self, *, order_reference: str, idempotency_key: str) -> GatewayResult | None:
        """The intent an authorisation with this key created, if any (for compensation)."""
        intent = SimulatedPaymentIntent.objects.filter(idempotency_key=idempotency_key).first()
        return _result(intent) if intent and intent.status != "new" else None

    def retrieve(self, *, provider_reference: str) -> GatewayResult:
        with transaction.atomic():
            return _result(self._intent(provider_reference))

    @staticmethod
    def _intent(provider_reference: str) -> SimulatedPaymentIntent:
        try:
            return SimulatedPaymentIntent.objects.select_for_update().get(reference=provider_reference)
        except SimulatedPaymentIntent.DoesNotExist as exc:
            raise GatewayError(f"No such payment intent: {provider_reference}") from exc
