"""What Stripe's webhook events change: nudges to the pipeline, refunds and disputes recorded.

An event only says that something happened. What the order does about it is decided from
the provider's current view of the intent (read by the pipeline or here), never from the
event's copy, so an event delivered twice, late or out of order leads to the same end as
one timely delivery; and each event id is stored once, so a duplicate is not even read.
"""

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from framework import metrics
from framework.queue import Task, enqueue, enqueue_on_commit
from orders import history
from orders.models import FAILURE_ENDS, Order, lock_order
from orders.models import OrderState as S
from payments.gateways import get_gateway
from payments.gateways.base import IntentStatus
from payments.gateways.stripe_gateway import event_order_reference
from payments.models import Payment, Refund, StripeEvent
from payments.money import from_minor_units
from payments.refund_reasons import reason_from_stripe
from payments.services import record_payment

logger = logging.getLogger(__name__)


def receive_stripe_event(event: dict) -> bool:
    """Store a verified event once and queue its processing after commit; False for a duplicate."""
    with transaction.atomic():
        stored, created = StripeEvent.objects.get_or_create(
            event_id=event["id"], defaults={"type": event["type"], "payload": event}
        )
        if created:
            enqueue_on_commit(Task.PROCESS_STRIPE_EVENT, stored.pk, group="payments")
    metrics.WEBHOOK_EVENTS.labels("stripe", "accepted" if created else "duplicate").inc()
    if not created:
        logger.info("Stripe event %s (%s) delivered again: ignored", event["id"], event["type"])
    return created


def process_stripe_event(event_pk: int) -> None:
    """Act on one stored event, once; a failure leaves it for the reconciler to retry."""
    stored = StripeEvent.objects.get(pk=event_pk)
    if stored.processed_at:
        return
    handler = HANDLERS.get(stored.type)
    try:
        if handler:
            handler(stored.payload["data"]["object"])
    except Exception as error:
        StripeEvent.objects.filter(pk=event_pk).update(error=f"{type(error).__name__}: {error}"[:2000])
        raise
    StripeEvent.objects.filter(pk=event_pk, processed_at__isnull=True).update(processed_at=timezone.now(), error="")


def _order_for_intent(intent_id: str | None, order_reference: str = "") -> Order | None:
    if intent_id:
        payment = Payment.objects.select_related("order").filter(provider_reference=intent_id).first()
        if payment:
            return payment.order
    if order_reference:
        return Order.objects.filter(reference=order_reference).first()
    return None


def on_payment_intent(intent: dict) -> None:
    """An intent moved: let the pipeline read where it stands, or give back money that came too late."""
    order = _order_for_intent(intent.get("id"), event_order_reference(intent))
    if order is None:
        logger.warning("Stripe event for payment intent %s of no known order", intent.get("id"))
        return
    if order.state == S.VALIDATED:
        # Waiting for the shopper's authentication: the pipeline reads the intent and moves on.
        enqueue(Task.ADVANCE_ORDER, order.pk)
    elif order.state in FAILURE_ENDS and intent.get("status") in ("requires_capture", "succeeded"):
        # The shopper authenticated after the order ended (late, or with another card):
        # compensation reads the intent and voids or refunds it.
        logger.warning("order %s is %s but its payment intent is %s", order.reference, order.state, intent["status"])
        enqueue(Task.REFUND_OR_VOID, order.pk)


def on_charge_refunded(charge: dict) -> None:
    """A refund went through (ours, or one made in Stripe's dashboard): bring the payment row up to date.

    Money refunded at the provider beyond our own refunds (made or on their way) was refunded
    in Stripe's dashboard: it becomes a refund of ours, filed under the reason Stripe gives,
    and the shopper gets its credit note and email as for any refund.
    """
    intent_id = charge.get("payment_intent")
    order = _order_for_intent(intent_id)
    if order is None or not intent_id:
        logger.warning("Stripe refund of charge %s of no known order", charge.get("id"))
        return
    current = get_gateway().retrieve(provider_reference=intent_id)  # outside any lock: a network call
    if current.status != IntentStatus.REFUNDED:
        return
    reason = reason_from_stripe(_latest_refund_reason(charge))
    with transaction.atomic():
        order = lock_order(order.pk)
        before = Payment.objects.get(order=order).amount_refunded
        payment = record_payment(order, current)
        if payment.amount_refunded == before:
            return
        history.refund_recorded(
            order, actor=history.WEBHOOK, refunded=payment.amount_refunded, currency=payment.currency
        )
        ours = payment.refunds.filter(status__in=[Refund.Status.SUCCEEDED, Refund.Status.PENDING]).aggregate(
            total=Sum("amount")
        )["total"] or Decimal("0")
        if payment.amount_refunded > ours:
            refund = Refund.objects.create(
                order=order,
                payment=payment,
                amount=payment.amount_refunded - ours,
                currency=payment.currency,
                reason_code=reason,
                reason="Refunded in Stripe's dashboard.",
                requested_by=DASHBOARD,
                status=Refund.Status.SUCCEEDED,
            )
            history.refund_succeeded(order, refund=refund.pk, amount=refund.amount, currency=refund.currency)
            enqueue_on_commit(Task.SEND_REFUND_EMAIL, refund.pk)


# Who a refund made in Stripe's dashboard is recorded as requested by.
DASHBOARD = "stripe dashboard"


def _latest_refund_reason(charge: dict) -> str | None:
    """The `reason` of the charge's newest refund, where the event lists its refunds."""
    refunds = (charge.get("refunds") or {}).get("data") or []
    newest = max(refunds, key=lambda refund: refund.get("created") or 0, default=None)
    return newest.get("reason") if newest else None


def on_dispute_created(dispute: dict) -> None:
    """The shopper's bank disputes the charge: a manager must answer before the deadline."""
    order = _order_for_intent(dispute.get("payment_intent"))
    if order is None:
        logger.error("Stripe dispute %s for a payment of no known order", dispute.get("id"))
        return
    currency = str(dispute.get("currency", order.currency)).upper()
    amount = from_minor_units(int(dispute.get("amount", 0)), currency)
    message = f"Dispute {dispute.get('id')} opened ({dispute.get('reason', 'unknown reason')}): {amount} {currency}"
    if due_by := (dispute.get("evidence_details") or {}).get("due_by"):
        message += f"; evidence due by {datetime.fromtimestamp(due_by, tz=UTC):%Y-%m-%d %H:%M} UTC"
    history.flag_order(
        order, actor=history.WEBHOOK, step="stripe_dispute", finding=str(dispute.get("id")), message=message + "."
    )


HANDLERS: dict[str, Callable[[dict], None]] = {
    "payment_intent.succeeded": on_payment_intent,
    "payment_intent.amount_capturable_updated": on_payment_intent,
    "payment_intent.payment_failed": on_payment_intent,
    "payment_intent.canceled": on_payment_intent,
    "charge.refunded": on_charge_refunded,
    "charge.dispute.created": on_dispute_created,
}
