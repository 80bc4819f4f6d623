"""Taking and giving back an order's money through the configured gateway.

Functions named `*_payment` call the provider and must run outside any transaction that
holds an order lock; `record_*` functions write the outcome and run inside the caller's
transaction. Idempotency keys are derived from the order and the operation, so a retry,
or a second worker running the same step, can never charge twice.
"""

import logging
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from framework import metrics
from framework.compiled_query import CompiledQuery, Mark
from framework.compiled_writes import writes_for
from orders.models import Order
from payments.gateways import get_gateway
from payments.gateways.base import GatewayError, GatewayResult, IntentStatus, PaymentMethodOption
from payments.models import MONEY_HELD_STATUSES, Payment
from payments.money import from_minor_units, to_minor_units

logger = logging.getLogger(__name__)

PAYMENT_STATUS_FOR = {
    IntentStatus.AUTHORIZED: Payment.Status.AUTHORIZED,
    IntentStatus.CAPTURED: Payment.Status.CAPTURED,
    IntentStatus.REQUIRES_ACTION: Payment.Status.REQUIRES_ACTION,
    IntentStatus.DECLINED: Payment.Status.DECLINED,
    IntentStatus.VOIDED: Payment.Status.VOIDED,
    IntentStatus.REFUNDED: Payment.Status.REFUNDED,
}


def idempotency_key(order: Order, operation: str) -> str:
    """The provider-side idempotency key of one operation on one order.

    A redriven order's calls are a new generation (`:redrive-<n>`): the keys of the last one
    belong to an intent its compensation voided, and reusing one would replay that answer.
    """
    key = f"{order.reference}:{operation}"
    return f"{key}:redrive-{order.redrive_count}" if order.redrive_count else key


def check_payment_method(payment_method: str) -> str:
    """Why the configured gateway could never charge this payment method ("" when it may be tried)."""
    return get_gateway().check_payment_method(payment_method)


def stripe_js_publishable_key() -> str:
    """The key the shop page loads Stripe.js with to collect cards itself; "" when it does not
    load Stripe.js (another gateway, or no publishable key: it offers the test methods)."""
    return settings.STRIPE_PUBLISHABLE_KEY if settings.PAYMENT_GATEWAY == "stripe" else ""


def offered_test_payment_methods() -> tuple[PaymentMethodOption, ...]:
    """What a shop page without a card form may offer: the gateway's test methods, none in live mode
    or where the page collects cards itself (a Stripe publishable key is set)."""
    if stripe_js_publishable_key():
        return ()
    return get_gateway().test_payment_methods()


# Asked before every authorisation: written by the ORM once per process.
_AWAITING_AUTHENTICATION = CompiledQuery(
    lambda order_id: (
        Payment.objects.filter(order_id=order_id, status=Payment.Status.REQUIRES_ACTION)
        .exclude(provider_reference="")
        .values_list("provider_reference")[:1]
    ),
    order_id=Mark(-7_340_321),
)


def _reference_awaiting_authentication(order: Order) -> str | None:
    """The provider's reference of the order's payment waiting for the shopper, if one is."""
    rows = _AWAITING_AUTHENTICATION.rows(order_id=order.pk)
    return rows[0][0] if rows else None


def awaiting_authentication(order: Order) -> bool:
    """Whether the order's payment waits for the shopper to authenticate (3-D Secure)."""
    return _reference_awaiting_authentication(order) is not None


def authorize_payment(order: Order) -> GatewayResult:
    """Hold the order's total on the shopper's payment method (network call).

    An authorisation already waiting for the shopper (3-D Secure) is read, not asked for
    again: asking again with its key would only replay the first answer.
    """
    if waiting := _reference_awaiting_authentication(order):
        return get_gateway().retrieve(provider_reference=waiting)
    return get_gateway().authorize(
        order_reference=order.reference,
        amount_minor=to_minor_units(order.total, order.currency),
        currency=order.currency,
        payment_method=order.payment_method,
        idempotency_key=idempotency_key(order, "authorize"),
    )


def payment_of(order: Order) -> Payment | None:
    """The order's payment row, None when it has none yet.

    The row this process last wrote or read for this `order` instance when there is one (the
    pipeline hands one instance from step to step), so a chain of steps reads it once. What
    the steps read from it (the provider's reference, the amount, the card) does not change
    once authorised, and `record_payment` writes only what the answer it records sets.
    """
    cached = Order.payment.related.get_cached_value(order, default=None)
    if isinstance(cached, Payment):
        return cached
    payment = Payment.objects.filter(order=order).first()
    if payment is not None:
        payment.order = order  # remembered on the instance, both ways
    return payment


# What `record_payment` writes of a row that exists: what an answer sets, never a column the
# answer does not speak of (the amount refunded only from a refund's answer).
_RECORDED = ["status", "provider_reference", "decline_code", "card_brand", "card_last4", "client_secret", "updated_at"]


def record_payment(order: Order, result: GatewayResult) -> Payment:
    """Write the provider's answer into the order's payment row.

    Runs inside the order's transaction, under its lock, which makes it the row's only
    writer: the row is read (or taken from `payment_of`'s instance), or made, and written once.
    """
    payment = payment_of(order) or Payment(
        order=order, provider=get_gateway().name, amount=order.total, currency=order.currency
    )
    was = payment.status if payment.pk else None
    fields = list(_RECORDED)
    payment.status = PAYMENT_STATUS_FOR[result.status]
    if result.status == IntentStatus.REFUNDED:
        refunded = from_minor_units(result.amount_refunded_minor, order.currency)
        payment.amount_refunded = min(refunded, payment.amount)
        fields.append("amount_refunded")
        if payment.amount_refunded < payment.amount:
            payment.status = Payment.Status.PARTIALLY_REFUNDED
    payment.provider_reference = result.reference or payment.provider_reference
    payment.decline_code = result.decline_code or payment.decline_code
    payment.card_brand = result.card_brand or payment.card_brand
    payment.card_last4 = result.card_last4 or payment.card_last4
    if result.capture_before:  # read with the hold, kept after it is captured or voided
        payment.authorization_expires_at = result.capture_before
        fields.append("authorization_expires_at")
    # Only a payment waiting for the shopper needs its secret; forget it afterwards.
    payment.client_secret = result.client_secret if result.status == IntentStatus.REQUIRES_ACTION else ""
    # Through the model's compiled statements: each order's payment is written twice a sale.
    if payment.pk:
        payment.updated_at = timezone.now()
        writes_for(Payment).update(payment.pk, {name: getattr(payment, name) for name in fields})
    else:
        writes_for(Payment).insert([payment])
    if payment.status != was:
        # An outcome is a change of the payment's status: reading the same answer again
        # (compensation reading a decline) is no new outcome.
        provider, status, code = payment.provider, str(payment.status), result.decline_code
        metrics.count_on_commit(lambda: metrics.PAYMENT_OUTCOMES.labels(provider, status, code).inc())
    return payment


def is_money_held(order: Order) -> bool:
    """Whether our books say the order's payment may still hold the shopper's money."""
    return Payment.objects.filter(order=order, status__in=MONEY_HELD_STATUSES).exists()


def start_new_payment(order: Order) -> dict[str, str]:
    """Make a settled payment row ready for a fresh authorisation (a redriven order).

    Runs under the order's lock; the caller has checked that no money is held. Returns what
    the row said before, for the order's history: the old intent stays at the provider.
    """
    payment = Payment.objects.filter(order=order).first()
    if payment is None:
        return {}
    before = {"provider_reference": payment.provider_reference, "status": payment.status}
    payment.status = Payment.Status.PENDING
    payment.provider = get_gateway().name
    payment.provider_reference = payment.decline_code = payment.client_secret = ""
    payment.card_brand = payment.card_last4 = ""
    payment.amount, payment.amount_refunded, payment.currency = order.total, 0, order.currency
    payment.save()
    return before


def authentication_expired(payment: Payment) -> bool:
    """Whether a payment has waited for the shopper's authentication longer than allowed."""
    waited = timezone.now() - payment.created_at
    return waited >= timedelta(seconds=settings.PAYMENT_AUTHENTICATION_TIMEOUT_SECONDS)


def capture_payment(order: Order) -> GatewayResult:
    """Take the held amount once the inventory is deducted (network call)."""
    payment = payment_of(order)
    if payment is None:
        raise Payment.DoesNotExist(f"order {order.reference} has no payment to capture")
    return get_gateway().capture(
        provider_reference=payment.provider_reference,
        amount_minor=to_minor_units(payment.amount, payment.currency),
        idempotency_key=idempotency_key(order, "capture"),
    )


def refund_payment(order: Order, amount: Decimal | None = None, *, operation: str = "refund") -> GatewayResult:
    """Give back `amount` (all that is left when None) of a captured payment (network call)."""
    payment = Payment.objects.get(order=order)
    amount = payment.amount - payment.amount_refunded if amount is None else amount
    return get_gateway().refund(
        provider_reference=payment.provider_reference,
        amount_minor=to_minor_units(amount, payment.currency),
        idempotency_key=idempotency_key(order, operation),
    )


def compensate_payment(order: Order) -> GatewayResult | None:
    """Leave the order with no net charge: void a hold, refund a capture (network calls).

    Reads the provider's current view first, so it is right whichever way a race with a
    capture went; a void that loses such a race is followed by a refund. Returns the final
    view, or None when no payment was ever made.
    """
    gateway = get_gateway()
    payment = Payment.objects.filter(order=order).first()
    current: GatewayResult | None
    if payment and payment.provider_reference:
        current = gateway.retrieve(provider_reference=payment.provider_reference)
    else:
        # The authorisation's answer may have been lost (a timeout): ask by its key.
        current = gateway.find_authorization(
            order_reference=order.reference, idempotency_key=idempotency_key(order, "authorize")
        )
        if current is None:
            return None
    if current.status in (IntentStatus.AUTHORIZED, IntentStatus.REQUIRES_ACTION):
        try:
            return gateway.void(provider_reference=current.reference, idempotency_key=idempotency_key(order, "void"))
        except GatewayError:
            current = gateway.retrieve(provider_reference=current.reference)
            if current.status != IntentStatus.CAPTURED:
                raise
    total_minor = to_minor_units(order.total, order.currency)
    if current.status == IntentStatus.CAPTURED or (
        current.status == IntentStatus.REFUNDED and current.amount_refunded_minor < total_minor
    ):
        return gateway.refund(
            provider_reference=current.reference,
            amount_minor=total_minor - current.amount_refunded_minor,
            idempotency_key=idempotency_key(order, "compensation-refund"),
        )
    return current
