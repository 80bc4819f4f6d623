"""When a card hold lapses: the one rule the home tile, the order filter, the alarm and the
lapse policy read.

The provider says when (Stripe's `capture_before` on the charge, the simulated gateway's
window), kept on the payment as `authorization_expires_at`; a payment recorded before that
was read is assumed to lapse PAYMENT_AUTHORIZATION_DAYS after it was made.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from payments.models import Payment


def hold_lapses_before_q(moment: datetime, *, prefix: str = "") -> Q:
    """Payments (through `prefix`, e.g. "payment__" from orders) still authorised whose hold lapses before `moment`."""
    assumed_start = moment - timedelta(days=settings.PAYMENT_AUTHORIZATION_DAYS)
    return Q(**{f"{prefix}status": Payment.Status.AUTHORIZED}) & (
        Q(**{f"{prefix}authorization_expires_at__lt": moment})
        | Q(**{f"{prefix}authorization_expires_at__isnull": True, f"{prefix}created_at__lt": assumed_start})
    )


def lapsing_within(now: datetime) -> datetime:
    """The moment before which an uncaptured hold counts as lapsing soon (tile, filter, alarm)."""
    return now + timedelta(hours=settings.ALARM_AUTHORIZATION_EXPIRY_HOURS)


def hold_lapses_at(payment: Payment) -> datetime | None:
    """When this payment's hold lapses (read from the provider, else assumed); None when not held."""
    if payment.status != Payment.Status.AUTHORIZED:
        return None
    return payment.authorization_expires_at or payment.created_at + timedelta(days=settings.PAYMENT_AUTHORIZATION_DAYS)
