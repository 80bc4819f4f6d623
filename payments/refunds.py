"""Managers' refunds: part or all of a captured payment given back, each exactly once.

`request_refund` checks and writes the refund under the order's lock; `issue_refund`
sends it to the provider afterwards, outside any lock, through `refund_payment` (the
service compensation uses too) with an idempotency key naming the refund. A refund whose
answer was lost stays pending and is sent again with the same key by the reconciler.
"""

import logging
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum

from framework.queue import Task, enqueue_on_commit
from orders import history
from orders.models import Order, lock_order
from payments.gateways import get_gateway
from payments.gateways.base import GatewayError, GatewayResult, TransientGatewayError
from payments.models import Payment, Refund
from payments.money import from_minor_units, to_minor_units
from payments.refund_reasons import UnknownRefundReason, reason_named
from payments.services import record_payment, refund_payment

logger = logging.getLogger(__name__)

REFUNDABLE = (Payment.Status.CAPTURED, Payment.Status.PARTIALLY_REFUNDED)


class RefundNotAllowed(Exception):
    """The refund asked for cannot be made; the message says why, for the manager."""


def refundable_amount(payment: Payment) -> Decimal:
    """What may still be refunded: captured, less refunded, less refunds on their way."""
    pending = payment.refunds.filter(status=Refund.Status.PENDING).aggregate(total=Sum("amount"))["total"] or 0
    return payment.amount - payment.amount_refunded - pending


def request_refund(
    order: Order,
    amount: Decimal | None = None,
    *,
    requested_by: str,
    reason_code: str,
    reason: str = "",
    action_token: str = "",
) -> Refund:
    """Record a manager's refund of `amount` (all that is left when None) and queue it to the provider.

    `reason_code` names a reason from the list (`payments.refund_reasons`), required;
    `reason` is the manager's note. `action_token` names the confirmation form it came from,
    in the history, so that form posted twice refunds once (`backoffice.actions`).
    """
    try:
        listed = reason_named(reason_code)
    except UnknownRefundReason as error:
        raise RefundNotAllowed(str(error)) from error
    with transaction.atomic():
        order = lock_order(order.pk)
        payment = Payment.objects.filter(order=order).first()
        if payment is None or payment.status not in REFUNDABLE:
            status = payment.status if payment else "no payment"
            raise RefundNotAllowed(f"{order.reference} has no captured payment to refund ({status}).")
        left = refundable_amount(payment)
        amount = left if amount is None else amount
        if amount <= 0 or amount > left:
            raise RefundNotAllowed(
                f"{order.reference}: a refund is more than 0 and at most {left} {payment.currency} (what is left)."
            )
        if from_minor_units(to_minor_units(amount, payment.currency), payment.currency) != amount:
            raise RefundNotAllowed(f"{amount} is not an amount of {payment.currency}.")
        refund = Refund.objects.create(
            order=order,
            payment=payment,
            amount=amount,
            currency=payment.currency,
            reason=reason[:200],
            reason_code=listed,
            requested_by=requested_by,
        )
        history.refund_requested(
            order,
            actor=history.manager(requested_by),
            refund=refund.pk,
            amount=amount,
            currency=refund.currency,
            reason=f"{listed.label}. {reason}" if reason else listed.label,
            reason_code=listed.code,
            action_token=action_token,
        )
        enqueue_on_commit(Task.ISSUE_REFUND, refund.pk, group="payments")
    return refund


def issue_refund(refund_id: int) -> Refund:
    """Send a pending refund to the provider; resending it (same key) never refunds twice."""
    refund = Refund.objects.select_related("order").get(pk=refund_id)
    if refund.status != Refund.Status.PENDING:
        return refund
    try:
        result = refund_payment(refund.order, refund.amount, operation=f"refund-{refund.pk}")
    except TransientGatewayError as error:
        # Perhaps refunded, perhaps not: stays pending, and the same key settles it later.
        Refund.objects.filter(pk=refund.pk).update(error=str(error)[:2000])
        logger.warning("refund #%s of %s not confirmed yet: %s", refund.pk, refund.order.reference, error)
        return refund
    except GatewayError as error:
        current = _current_view(refund.order)  # our books may be behind (a refund made in Stripe's dashboard)
        with transaction.atomic():
            order = lock_order(refund.order_id)
            if current is not None:
                record_payment(order, current)
            Refund.objects.filter(pk=refund.pk).update(status=Refund.Status.FAILED, error=str(error)[:2000])
            history.refund_refused(order, refund=refund.pk, error=str(error))
        logger.error("refund #%s of %s refused: %s", refund.pk, refund.order.reference, error)
        refund.refresh_from_db()
        return refund
    with transaction.atomic():
        order = lock_order(refund.order_id)
        refund = Refund.objects.select_for_update().get(pk=refund.pk)
        if refund.status == Refund.Status.PENDING:
            record_payment(order, result)
            refund.status, refund.error = Refund.Status.SUCCEEDED, ""
            refund.save(update_fields=["status", "error", "updated_at"])
            history.refund_succeeded(order, refund=refund.pk, amount=refund.amount, currency=refund.currency)
            # The shopper hears of the money once it is on its way back.
            enqueue_on_commit(Task.SEND_REFUND_EMAIL, refund.pk)
    return refund


def _current_view(order: Order) -> GatewayResult | None:
    """The provider's view of the order's payment, or None when it cannot be read now."""
    try:
        return get_gateway().retrieve(provider_reference=order.payment.provider_reference)
    except GatewayError:
        return None
