"""The reconciler: our books against the provider's, on a schedule.

The payment of every settled order is compared with the provider's current view of its
intent once the order has settled (untouched for PAYMENT_RECONCILE_AFTER_SECONDS), and again
each time the order changes after; an order whose state says otherwise is flagged for a
manager (needs_attention, a history event, an error log): money kept for an order that
failed or was cancelled (a charge without an order), or an order confirmed without the money
taken (an order without a charge). It also finishes what was left half-done: refunds whose
answer was lost, and webhook events whose processing failed.

Each run goes on from where the last one stopped (`ReconcilerProgress`: the last order
compared, by when it changed), so a run asks the provider about the orders settled since,
not again about every payment of the last PAYMENT_RECONCILE_HOURS: that was one provider
call per payment of two days on every run, 7,613 calls in one run of the bench's soak
(BENCHMARKS.md), and at a real shop's volume past Stripe's rate limit. A first run, or one
after a long stop, looks back PAYMENT_RECONCILE_HOURS at most. A payment the provider could
not be asked about stops the run there: the next run starts with it.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from framework import metrics
from orders import history
from orders.models import FAILURE_ENDS, Order
from orders.models import OrderState as S
from payments.gateways import get_gateway
from payments.gateways.base import GatewayConfigurationError, GatewayError, GatewayResult, IntentStatus
from payments.models import Payment, ReconcilerProgress, Refund, StripeEvent
from payments.money import from_minor_units, to_minor_units
from payments.refunds import issue_refund
from payments.stripe_events import process_stripe_event

logger = logging.getLogger(__name__)

PROGRESS = "payments"

ENDED_WITH_MONEY = frozenset({S.CONFIRMED, S.COMPLETED})


def _progress(now: datetime) -> ReconcilerProgress:
    """Where this run starts: after the last order compared, or PAYMENT_RECONCILE_HOURS back
    (a first run, or one after a longer stop)."""
    earliest = now - timedelta(hours=settings.PAYMENT_RECONCILE_HOURS)
    progress = ReconcilerProgress.objects.filter(name=PROGRESS).first()
    if progress is None or progress.order_changed_at < earliest:
        return ReconcilerProgress(name=PROGRESS, order_changed_at=earliest, order_id=0)
    return progress


def payment_mismatch(order: Order, payment: Payment, current: GatewayResult) -> str:
    """What is wrong between an order's state and the provider's view of its payment ('' if nothing)."""
    if order.state in FAILURE_ENDS:
        if current.status in (IntentStatus.CAPTURED, IntentStatus.REFUNDED):
            kept_minor = to_minor_units(payment.amount, payment.currency) - current.amount_refunded_minor
            if kept_minor > 0:
                kept = from_minor_units(kept_minor, payment.currency)
                return (
                    f"Charge without an order: the order is {order.state} but {kept} {payment.currency} "
                    f"is captured at the provider ({current.reference})."
                )
        if current.status in (IntentStatus.AUTHORIZED, IntentStatus.REQUIRES_ACTION):
            return (
                f"Hold without an order: the order is {order.state} but its payment {current.reference} "
                f"is still {current.status} at the provider."
            )
    elif order.state in ENDED_WITH_MONEY and current.status not in (IntentStatus.CAPTURED, IntentStatus.REFUNDED):
        return (
            f"Order without a charge: the order is {order.state} but its payment {current.reference} "
            f"is {current.status} at the provider."
        )
    return ""


def reconcile_payments() -> int:
    """Compare the payments of the orders settled since the last run with the provider, flag
    mismatches, resend what was left half-done.

    Returns how many orders were newly flagged.
    """
    gateway = get_gateway()
    now = timezone.now()
    settled = now - timedelta(seconds=settings.PAYMENT_RECONCILE_AFTER_SECONDS)
    progress = _progress(now)
    after_last = Q(order__updated_at__gt=progress.order_changed_at) | Q(
        order__updated_at=progress.order_changed_at, order_id__gt=progress.order_id
    )
    payments = (
        Payment.objects.select_related("order")
        .filter(
            after_last,
            provider=gateway.name,
            order__updated_at__lte=settled,
            order__state__in=FAILURE_ENDS | ENDED_WITH_MONEY,
        )
        .exclude(provider_reference="")
        .order_by("order__updated_at", "order_id")
    )
    flagged = 0
    try:
        for payment in payments.iterator():
            try:
                current = gateway.retrieve(provider_reference=payment.provider_reference)
            except GatewayConfigurationError:
                raise
            except GatewayError as error:
                logger.warning(
                    "reconciler could not read payment %s (%s); the next run starts with it",
                    payment.provider_reference,
                    error,
                )
                break
            # Read before a flag changes the order (and so brings it back to a later run).
            compared = (payment.order.updated_at, payment.order_id)
            message = payment_mismatch(payment.order, payment, current)
            if message and history.flag_order(
                payment.order,
                actor=history.RECONCILER,
                step="reconcile_payments",
                # One finding per kind of mismatch and payment, however its amounts move.
                finding=f"{message.split(':', 1)[0]} ({payment.provider_reference})",
                message=message,
            ):
                flagged += 1
                metrics.RECONCILER_MISMATCHES.inc()
            progress.order_changed_at, progress.order_id = compared
    finally:
        progress.save()
    for refund_id in Refund.objects.filter(status=Refund.Status.PENDING, created_at__lte=settled).values_list(
        "pk", flat=True
    ):
        issue_refund(refund_id)
    for event_pk in StripeEvent.objects.filter(processed_at__isnull=True, received_at__lte=settled).values_list(
        "pk", flat=True
    ):
        try:
            process_stripe_event(event_pk)
        except Exception:
            logger.exception("Stripe event #%s still fails", event_pk)
    if flagged:
        logger.error("reconciler flagged %d orders whose payments disagree with the provider", flagged)
    return flagged
