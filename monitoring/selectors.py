"""The aggregates the monitoring page and the alarms read, beyond the facts each app keeps
(`orders.selectors.open_orders_by_state`, `framework.queue.queue_backlog` and
`running_clusters`, `inventory.selectors.products_low_on_stock`).

Every read is bounded by a window on an indexed timestamp, so the page and the alarms cost
the same with a million orders as with a hundred: orders by (state, updated_at) or
created_at, history events by (kind, created_at), payments by (status, updated_at), Stripe
events by (processed_at, received_at). Percentiles are PostgreSQL's percentile_cont; on
SQLite (the embedded default) the window's values are fetched and interpolated the same way.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, DurationField, ExpressionWrapper, F, FloatField, Func, Q, QuerySet, Sum
from django.db.models.functions import TruncMinute

from framework.queue import Task
from orders.models import FINAL_STATES, ActorKind, EventKind, Order, OrderEvent, OrderState
from payments.authorizations import hold_lapses_before_q
from payments.models import Payment, Refund, StripeEvent
from payments.money import to_cents

# The events that record one attempt of a pipeline step (a state-moving step writes
# STATE_CHANGED, a step that leaves the state as it is STEP_SUCCEEDED; waiting is no attempt).
ATTEMPT_KINDS = (EventKind.STATE_CHANGED, EventKind.STEP_SUCCEEDED, EventKind.STEP_RETRYING, EventKind.STEP_FAILED)
FAILED_OUTCOMES = (OrderEvent.Outcome.RETRYING, OrderEvent.Outcome.FAILED)


class PercentileCont(Func):
    """PostgreSQL's percentile_cont(fraction) WITHIN GROUP (ORDER BY expression), an aggregate."""

    contains_aggregate = True
    template = "percentile_cont(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


def _interpolate(sorted_values: list[float], fraction: float) -> float:
    """percentile_cont's linear interpolation between the two nearest ranks."""
    position = fraction * (len(sorted_values) - 1)
    low, high = math.floor(position), math.ceil(position)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _seconds(value) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def percentiles_by(queryset: QuerySet, value, fractions: tuple[float, ...], group: str | None = None) -> dict:
    """{group value (None without a group): [percentile per fraction]} of `value` over `queryset`,
    in seconds for durations. One grouped query on PostgreSQL; one fetch of the values on SQLite."""
    rows = queryset.order_by()
    if connection.vendor == "postgresql":
        output: DurationField | FloatField = (
            DurationField() if isinstance(getattr(value, "output_field", None), DurationField) else FloatField()
        )
        aggregates = {f"p{i}": PercentileCont(value, f, output_field=output) for i, f in enumerate(fractions)}
        if group is None:
            result = rows.aggregate(**aggregates)
            return {} if result["p0"] is None else {None: [_seconds(result[f"p{i}"]) for i in range(len(fractions))]}
        return {
            row[group]: [_seconds(row[f"p{i}"]) for i in range(len(fractions))]
            for row in rows.values(group).annotate(**aggregates)
        }
    values: dict = {}
    for key, item in rows.annotate(_value=value).values_list(group or "_value", "_value"):
        values.setdefault(key if group else None, []).append(_seconds(item))
    return {key: [_interpolate(sorted(items), f) for f in fractions] for key, items in values.items()}


def orders_ended_since(since: datetime) -> dict[str, int]:
    """How many orders reached each final state since `since` (their last change: the end),
    one range per state on the (state, updated_at) index."""
    rows = Order.objects.filter(state__in=FINAL_STATES, updated_at__gte=since).order_by().values("state")
    return {row["state"]: row["count"] for row in rows.annotate(count=Count("id"))}


def orders_placed_by_state(since: datetime) -> dict[str, int]:
    """The orders placed since `since`, counted by the state each is in now (created_at index)."""
    rows = Order.objects.filter(created_at__gte=since).order_by().values("state").annotate(count=Count("id"))
    return {row["state"]: row["count"] for row in rows}


def orders_completed_per_minute(since: datetime) -> dict[datetime, int]:
    """Orders that reached COMPLETED, per minute of their completion, since `since`."""
    rows = (
        Order.objects.filter(state=OrderState.COMPLETED, updated_at__gte=since, completed_at__gte=since)
        .order_by()
        .annotate(minute=TruncMinute("completed_at"))
        .values("minute")
        .annotate(count=Count("id"))
    )
    return {row["minute"]: row["count"] for row in rows}


def _pipeline_attempts(since: datetime) -> QuerySet[OrderEvent]:
    return OrderEvent.objects.filter(kind__in=ATTEMPT_KINDS, created_at__gte=since, actor_kind=ActorKind.PIPELINE)


@dataclass(frozen=True)
class StepAttempts:
    attempts: int
    failed: int  # failed attempts, retried or not

    @property
    def failure_rate(self) -> float:
        return self.failed / self.attempts if self.attempts else 0.0


def step_attempts(since: datetime) -> dict[str, StepAttempts]:
    """Per pipeline step, its attempts since `since` and how many of them failed."""
    rows = (
        _pipeline_attempts(since)
        .order_by()
        .values("step")
        .annotate(attempts=Count("id"), failed=Count("id", filter=Q(outcome__in=FAILED_OUTCOMES)))
    )
    return {row["step"]: StepAttempts(row["attempts"], row["failed"]) for row in rows}


PERCENTILES = (0.5, 0.95, 0.99)


def step_durations(since: datetime) -> dict[str, list[float]]:
    """Per pipeline step, the p50, p95 and p99 of its attempts' durations since `since`, in ms."""
    return percentiles_by(_pipeline_attempts(since), F("duration_ms"), PERCENTILES, group="step")


def accept_to_completed(since: datetime) -> list[float]:
    """The p50 and p95, in seconds, from placing to completing, of orders completed since `since`."""
    completed = Order.objects.filter(state=OrderState.COMPLETED, updated_at__gte=since, completed_at__gte=since)
    latency = ExpressionWrapper(F("completed_at") - F("created_at"), output_field=DurationField())
    return percentiles_by(completed, latency, (0.5, 0.95)).get(None, [])


@dataclass(frozen=True)
class FailedTask:
    name: str
    func: str
    stopped: datetime
    error: str
    order_id: int | None  # the order it worked on, for the tasks that take one


ORDER_TASKS = frozenset(str(task) for task in Task if task.value.startswith("orders."))


def failed_tasks(limit: int = 20) -> list[FailedTask]:
    """The latest tasks the cluster gave up on (django-q2 keeps failures only, see Q_SAVE_LIMIT)."""
    from django_q.models import Failure

    failures = Failure.objects.order_by("-stopped")[:limit]
    return [
        FailedTask(
            name=failure.name,
            func=failure.func,
            stopped=failure.stopped,
            error=str(failure.result)[:300],
            order_id=failure.args[0] if failure.func in ORDER_TASKS and failure.args else None,
        )
        for failure in failures
    ]


def stale_stripe_events(received_before: datetime) -> QuerySet[StripeEvent]:
    """Stripe webhook events still unprocessed (failing, or never run) since before `received_before`."""
    return StripeEvent.objects.filter(processed_at__isnull=True, received_at__lt=received_before)


def authorisations_lapsing(lapsing_before: datetime) -> QuerySet[Payment]:
    """Payments authorised, not captured, whose hold lapses before `lapsing_before`, soonest first
    (`payments.authorizations`: the home tile's rule too)."""
    return (
        Payment.objects.filter(hold_lapses_before_q(lapsing_before))
        .select_related("order")
        .order_by("authorization_expires_at", "created_at")
    )


def orders_flagged_by(step: str, since: datetime) -> QuerySet[Order]:
    """Orders flagged by `step` since `since` that still need a manager (the events'
    (kind, created_at) index bounds the search)."""
    flagged = OrderEvent.objects.filter(kind=EventKind.FLAGGED, step=step, created_at__gte=since).values("order_id")
    return Order.objects.filter(pk__in=flagged, needs_attention=True)


@dataclass(frozen=True)
class RefundsByReason:
    reason: str
    currency: str
    last_day: int
    last_day_amount: Decimal
    last_month: int
    last_month_amount: Decimal


def refunds_by_reason(day_since: datetime, month_since: datetime) -> list[RefundsByReason]:
    """Refunds that went through since `month_since`, by reason and currency, with the part since `day_since`.

    One query; a refund's `updated_at` is when it went through (its last change).
    """
    in_day = Q(updated_at__gte=day_since)
    rows = (
        Refund.objects.filter(status=Refund.Status.SUCCEEDED, updated_at__gte=month_since)
        .values("reason_code__label", "reason_code__position", "currency")
        .annotate(
            last_day=Count("id", filter=in_day),
            last_day_amount=Sum("amount", filter=in_day),
            last_month=Count("id"),
            last_month_amount=Sum("amount"),
        )
        .order_by("reason_code__position", "reason_code__label", "currency")
    )
    return [
        RefundsByReason(
            reason=row["reason_code__label"],
            currency=row["currency"],
            last_day=row["last_day"],
            last_day_amount=to_cents(row["last_day_amount"] or 0),
            last_month=row["last_month"],
            last_month_amount=to_cents(row["last_month_amount"]),
        )
        for row in rows
    ]
