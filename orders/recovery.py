"""Recovery in seconds: retries that wait as rows, leases on orders being worked on, and
nudges for orders whose queue message was lost.

A queue message is only a nudge (DESIGN.md); the pipeline tick, every
PIPELINE_TICK_SECONDS, notices the ones that never arrived:

- a side step that failed transiently waits as a `ScheduledRetry`; the tick queues it when
  due (`fire_due_retries`) and moves its due time on by the step's lease, so a message lost
  on the way or a worker killed mid-attempt only delays it;
- a worker stamps a lease on the order as it starts an attempt (`take_lease`): until it
  lapses the order is being worked on, however long its provider takes to answer;
- an open order untouched for ORDER_NUDGE_AFTER_SECONDS (plus the age of the queue's
  backlog: its message may still be queued), outside any lease, with no retry waiting and
  not waiting for its shopper, has lost its message: the tick queues its next step again
  (`nudge_lost_orders`) and takes a lease for that message, so it is nudged once, not on
  every tick. A flagged order is left to the minute sweeper (`orders.sweeper`), which
  retries it at its slower pace.

Every cluster's broker runs the tick as it waits for tasks (config/broker.py), so there is
nothing more to deploy; `claim_tick` lets one cluster act per tick however many run. Nothing
ticks in the web process, nor with Q_SYNC unless a caller runs `run_pipeline_tick` itself.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from framework import metrics
from framework.compiled_query import CompiledQuery, Mark
from framework.queue import Task, enqueue, queue_backlog
from orders import history
from orders.flow import STEPS, Step
from orders.models import Order, PipelineTick, ScheduledRetry
from orders.models import OrderState as S
from orders.selectors import OPEN_STATES
from payments.models import Payment

logger = logging.getLogger(__name__)

TICK_NAME = "pipeline"
# The most retries fired or orders nudged by one tick; the rest wait for the next one.
BATCH = 500


@dataclass(frozen=True)
class Tick:
    """What one tick did: retries it queued, orders it nudged."""

    retries: int
    nudged: int


# The step's earlier attempts (`history.earlier_attempts`), written by the ORM once per
# process: building it anew for every attempt cost more Python than the rest of the lease.
_EARLIER_ATTEMPTS = CompiledQuery(
    lambda order_id, step: history.earlier_attempts(order_id, step).values("attempt"),
    order_id=Mark(-7_340_321),
    step=Mark("\x1estep\x1e"),
)


@dataclass(frozen=True)
class Lease:
    """What taking a lease read with it: the step's latest attempt so far, and the order's
    state as the lease found it (None when the order is gone)."""

    earlier_attempts: int
    state: str | None


def take_lease(order_id: int, step: Step) -> Lease:
    """Mark the order as worked on for as long as a healthy attempt of `step` may take, and
    read the step's latest attempt (`history.earlier_attempts`) and the order's state in the
    same statement: every attempt needs all three, one round trip instead of three."""
    until = timezone.now() + timedelta(seconds=step.lease_seconds())
    earlier_sql, earlier_params = _EARLIER_ATTEMPTS.sql_with_params(order_id=order_id, step=step.name)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Order._meta.db_table} SET worked_until = %s WHERE id = %s "
            f"RETURNING state, (SELECT coalesce(max(attempt), 0) FROM ({earlier_sql}) AS earlier)",
            [connection.ops.adapt_datetimefield_value(until), order_id, *earlier_params],
        )
        row = cursor.fetchone()
    return Lease(earlier_attempts=row[1], state=row[0]) if row else Lease(earlier_attempts=0, state=None)


def schedule_retry(order: Order, step: Step, *, attempts: int, delay: float) -> datetime:
    """Write (or move) the step's next attempt, due `delay` seconds from now; returns when."""
    due_at = timezone.now() + timedelta(seconds=delay)
    ScheduledRetry.objects.update_or_create(
        order=order, step=step.name, defaults={"attempt": attempts, "due_at": due_at}
    )
    return due_at


def claim_tick(now: datetime, period: float) -> bool:
    """Whether this cluster runs this tick: it moved the tick's row on, no other cluster did
    within most of a period (a compare-and-set on one row, on any database)."""
    earliest = now - timedelta(seconds=period * 0.8)
    if PipelineTick.objects.filter(name=TICK_NAME, ran_at__lte=earliest).update(ran_at=now):
        return True
    _, created = PipelineTick.objects.get_or_create(name=TICK_NAME, defaults={"ran_at": now})
    return created


def run_pipeline_tick(*, now: datetime | None = None) -> Tick | None:
    """One tick: queue the due retries and nudge the lost orders; None when another cluster
    ran one less than a period ago."""
    now = now or timezone.now()
    if not claim_tick(now, settings.PIPELINE_TICK_SECONDS):
        return None
    backlog = queue_backlog().oldest_age_seconds
    return Tick(retries=fire_due_retries(now, backlog=backlog), nudged=nudge_lost_orders(now, backlog=backlog))


def fire_due_retries(now: datetime, *, backlog: float = 0.0) -> int:
    """Queue every retry due by `now`, each due again after its step's lease (and the queue's
    backlog) in case its message or its worker is lost; returns how many were queued."""
    # Oldest order first among those due together (a released hold, a closed breaker).
    due_now = ScheduledRetry.objects.filter(due_at__lte=now).order_by("due_at", "order_id")
    due = list(due_now.values_list("pk", "step")[:BATCH])
    for count, (retry_id, step) in enumerate(due):
        lease = STEPS[step].lease_seconds() if step in STEPS else 30.0
        ScheduledRetry.objects.filter(pk=retry_id).update(due_at=now + timedelta(seconds=lease + backlog))
        try:
            enqueue(Task.RUN_DUE_RETRY, retry_id)
        except Exception as error:  # the broker is down: the rows keep their times
            logger.warning("could not queue due retries (%s); the next tick tries again", error)
            return count
    return len(due)


def orders_to_nudge(untouched_since: datetime, now: datetime) -> QuerySet[Order]:
    """Open orders untouched since `untouched_since` that nobody is working on: outside any
    worker's lease, no retry waiting for them, not waiting for the shopper; oldest first."""
    waiting_for_shopper = Q(state=S.VALIDATED, payment__status=Payment.Status.REQUIRES_ACTION)
    return (
        Order.objects.filter(state__in=OPEN_STATES, updated_at__lt=untouched_since)
        .exclude(waiting_for_shopper)
        .exclude(worked_until__gt=now)
        .exclude(Exists(ScheduledRetry.objects.filter(order=OuterRef("pk"))))
        .order_by("updated_at")
    )


def nudge_lost_orders(now: datetime, *, backlog: float = 0.0) -> int:
    """Queue the next step of every unflagged order whose message was lost; returns how many."""
    wait = timedelta(seconds=settings.ORDER_NUDGE_AFTER_SECONDS + backlog)
    lost = list(orders_to_nudge(now - wait, now).filter(needs_attention=False).values_list("pk", flat=True)[:BATCH])
    if not lost:
        return 0
    # The nudge's own lease: the message has this long to be taken before the order is nudged again.
    Order.objects.filter(pk__in=lost).update(worked_until=now + wait)
    for order_id in lost:
        enqueue(Task.ADVANCE_ORDER, order_id)
    metrics.SWEEPER_REDRIVES.labels("nudged").inc(len(lost))
    logger.warning("pipeline tick nudged %d orders whose message was lost", len(lost))
    return len(lost)
