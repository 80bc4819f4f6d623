"""A shopper's personal data: anonymised once the retention period after an order's end has
passed (a schedule), or at once on the shopper's request (`manage.py erase_shopper EMAIL`).

What goes: the order's email address and the client address it was placed from; the address
wherever the shop kept a copy (history event parameters and errors, email records' errors,
Stripe webhook payloads about it, stored email files of the file backend). What stays: the
order's reference, lines, amounts, tax, state and history, its payment and refunds, the
stock ledger and the receipt (its number, and its PDF as issued: docs/compliance.md says why).
Only orders in a final state are anonymised: an order in flight still needs its address.
"""

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from framework.activity import record_staff_activity
from orders.models import FINAL_STATES, Notification, Order, OrderEvent
from payments.models import StripeEvent

logger = logging.getLogger(__name__)

# An address that is valid for the field, says what happened, and can never receive mail (RFC 2606).
ERASED_EMAIL = "erased@erased.invalid"
ERASED = "[erased]"


@dataclass
class Erasure:
    """What one anonymisation did."""

    orders: list[str] = field(default_factory=list)  # references anonymised
    left_open: list[str] = field(default_factory=list)  # references not final yet: not touched
    email_files: int = 0


def _scrub(value, email: str):
    """`value` (JSON-like) with every occurrence of `email` (any case) replaced."""
    if isinstance(value, str):
        lowered = value.lower()
        if email not in lowered:
            return value
        start, out = 0, []
        while (at := lowered.find(email, start)) >= 0:
            out += [value[start:at], ERASED]
            start = at + len(email)
        return "".join([*out, value[start:]])
    if isinstance(value, list):
        return [_scrub(item, email) for item in value]
    if isinstance(value, dict):
        return {key: _scrub(item, email) for key, item in value.items()}
    return value


@transaction.atomic
def anonymise_orders(orders: list[Order]) -> Erasure:
    """Anonymise these orders (final ones) and the copies of their shoppers' addresses."""
    result = Erasure()
    for order in orders:
        email = order.email.lower()
        if email == ERASED_EMAIL:
            continue
        events = OrderEvent.objects.filter(order=order).annotate(_parameters=Cast("parameters", TextField()))
        for event in events.filter(Q(_parameters__icontains=email) | Q(error__icontains=email)):
            OrderEvent.objects.filter(pk=event.pk).update(
                parameters=_scrub(event.parameters, email), error=_scrub(event.error, email)
            )
        for notification in Notification.objects.filter(order=order, error__icontains=email):
            Notification.objects.filter(pk=notification.pk).update(error=_scrub(notification.error, email))
        # `update`, not save(): the order's state and timestamps are the pipeline's, left as they are.
        Order.objects.filter(pk=order.pk).update(email=ERASED_EMAIL, placed_from=None)
        result.orders.append(order.reference)
        if not Order.objects.filter(email__iexact=email).exists():
            result.email_files += _erase_everywhere(email)
    return result


def _erase_everywhere(email: str) -> int:
    """The address's copies outside its orders (once no order carries it): webhook payloads
    and the file backend's stored emails. Returns the email files removed."""
    payloads = StripeEvent.objects.annotate(_payload=Cast("payload", TextField()))
    for event in payloads.filter(_payload__icontains=email):
        StripeEvent.objects.filter(pk=event.pk).update(payload=_scrub(event.payload, email))
    removed = 0
    if settings.EMAIL_BACKEND == "django.core.mail.backends.filebased.EmailBackend":
        for path in Path(settings.EMAIL_FILE_PATH).glob("*"):
            try:
                if path.is_file() and email in path.read_text(errors="replace").lower():
                    path.unlink()
                    removed += 1
            except OSError as error:  # a file another process rotates away: it is gone either way
                logger.warning("erasure: could not read or remove %s: %s", path, error)
    return removed


def erase_shopper(email: str, *, requested_by: str = "manage.py erase_shopper") -> Erasure:
    """Answer a shopper's erasure request now: anonymise every ended order placed with `email`.

    Orders still in flight are left (and named) so the pipeline can finish them; run it again
    once they end. Recorded in the staff activity log, without the address itself.
    """
    email = email.strip().lower()
    orders = list(Order.objects.filter(email__iexact=email))
    ended = [o for o in orders if o.state in FINAL_STATES]
    result = anonymise_orders(ended)
    result.left_open = [o.reference for o in orders if o.state not in FINAL_STATES]
    if not orders:
        result.email_files = _erase_everywhere(email)
    record_staff_activity(
        actor=None,
        via=requested_by,
        what="erase shopper data",
        before={"email": "the shopper's address"},
        after={"email": ERASED_EMAIL},
        orders=result.orders,
        left_open=result.left_open,
        email_files=result.email_files,
    )
    return result


def anonymise_expired_orders(*, limit: int = 500) -> int:
    """The schedule's job: anonymise orders that ended more than SHOPPER_DATA_RETENTION_DAYS ago.

    An order's end is its `completed_at`, or its last change for the failure ends. At most
    `limit` orders a run, oldest first, so a first run on a large shop does not hold one long
    transaction; the next run takes the rest. Returns how many it anonymised.
    """
    cutoff = timezone.now() - timedelta(days=settings.SHOPPER_DATA_RETENTION_DAYS)
    due = (
        Order.objects.filter(state__in=FINAL_STATES)
        .exclude(email=ERASED_EMAIL)
        .filter(Q(completed_at__lt=cutoff) | Q(completed_at__isnull=True, updated_at__lt=cutoff))
        .order_by("updated_at")[:limit]
    )
    done = anonymise_orders(list(due)).orders
    if done:
        logger.info("anonymised %d orders past the retention period", len(done))
    return len(done)
