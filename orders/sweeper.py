"""The sweeper, every minute: the durability backstop behind the pipeline tick.

The tick (`orders.recovery`, every few seconds) nudges unflagged orders whose message was
lost and queues due retries; the sweeper re-drives what it leaves: flagged orders whose
receipt or email failed for good, orders waiting for the shopper's authentication, failed
orders that may still hold money, failure emails that never went. It runs with the tick
off (PIPELINE_TICK_SECONDS=0) as before.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from framework import metrics
from framework.queue import Task, enqueue
from orders.models import Notification, Order
from orders.models import OrderState as S
from orders.recovery import orders_to_nudge
from orders.selectors import open_orders_untouched_since
from payments.models import MONEY_HELD_STATUSES, Payment

logger = logging.getLogger(__name__)


def sweep_stuck_orders() -> int:
    """Re-drive every order the queue may have lost: the durability backstop.

    Orders in a non-final state untouched for ORDER_STUCK_AFTER_SECONDS that nobody works on
    (no worker's lease, no retry waiting: `recovery.orders_to_nudge`) are advanced again
    (a worker killed mid-step, a lost message, a flagged step to try again), those waiting for the shopper to
    authenticate with backoff (`_waiting_orders_due`); failed or cancelled orders that may still
    hold money are compensated again; failure and cancellation emails that never went are retried.
    Steps are idempotent, so nudging an order that was merely slow does no harm.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.ORDER_STUCK_AFTER_SECONDS)
    recent = now - timedelta(days=7)
    waiting_for_shopper = Q(state=S.VALIDATED, payment__status=Payment.Status.REQUIRES_ACTION)
    stuck = list(orders_to_nudge(stale, now).values_list("pk", flat=True)[:1000])
    stuck += _waiting_orders_due(open_orders_untouched_since(stale).filter(waiting_for_shopper))
    for order_id in stuck:
        enqueue(Task.ADVANCE_ORDER, order_id)
    unsettled = list(
        Order.objects.filter(
            state__in=[S.FAILED, S.CANCELLED, S.PAYMENT_FAILED],
            updated_at__lt=stale,
            updated_at__gt=recent,
            payment__status__in=MONEY_HELD_STATUSES,
        ).values_list("pk", flat=True)[:1000]
    )
    for order_id in unsettled:
        enqueue(Task.REFUND_OR_VOID, order_id)
    unnotified = list(
        Order.objects.filter(
            state__in=[S.REJECTED, S.PAYMENT_FAILED, S.FAILED, S.CANCELLED],
            updated_at__lt=stale,
            updated_at__gt=recent,
        )
        .exclude(
            Exists(
                Notification.objects.filter(
                    order=OuterRef("pk"),
                    kind__in=[Notification.Kind.FAILURE, Notification.Kind.CANCELLATION],
                    status__in=[Notification.Status.SENT, Notification.Status.CAPPED, Notification.Status.UNCERTAIN],
                )
            )
        )
        .values_list("pk", flat=True)[:1000]
    )
    for order_id in unnotified:
        enqueue(Task.SEND_FAILURE_NOTIFICATION, order_id)
    for reason, orders in (("stuck", stuck), ("unsettled", unsettled), ("unnotified", unnotified)):
        if orders:
            metrics.SWEEPER_REDRIVES.labels(reason).inc(len(orders))
    if stuck or unsettled or unnotified:
        logger.warning(
            "sweeper re-drove %d stuck, %d unsettled, %d unnotified orders", len(stuck), len(unsettled), len(unnotified)
        )
    return len(stuck) + len(unsettled) + len(unnotified)


def _waiting_orders_due(waiting) -> list[int]:
    """Which orders waiting for the shopper's authentication to ask the gateway about now.

    The webhook brings the news; this is the backstop for a lost event, so it asks with
    backoff rather than every minute: again only once the payment has gone unasked for as
    long as it had waited when last asked (checks at 1, 2, 4, 8... minutes of waiting), and
    never sooner than ORDER_STUCK_AFTER_SECONDS. Asking records the answer, which moves the
    payment's `updated_at`. The release pass ends those waiting too long in any case.
    """
    now = timezone.now()
    floor = timedelta(seconds=settings.ORDER_STUCK_AFTER_SECONDS)
    rows = waiting.values_list("pk", "payment__created_at", "payment__updated_at")[:1000]
    return [pk for pk, created, asked in rows if now - asked >= max(floor, asked - created)]
