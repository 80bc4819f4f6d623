"""What the monitoring page shows, gathered from the facts and the selectors in one place
(a fixed number of queries, each bounded by a window on an index)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from framework.breakers import read_breakers
from framework.queue import queue_backlog, running_clusters
from monitoring import charts, selectors
from monitoring.alarms import RULE_TITLES, alarm_recipients
from monitoring.models import AlarmFiring
from orders.flow import STEPS
from orders.holds import HELD_PREFIX
from orders.models import OrderState, PipelineHold, ScheduledRetry
from orders.selectors import open_orders_by_state, retrying_by_step

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
MONTH = timedelta(days=30)


@dataclass(frozen=True)
class StateRow:
    state: str
    last_hour: int
    last_day: int


@dataclass(frozen=True)
class StepRow:
    step: str
    attempts: int
    failed: int
    failure_percent: float
    meter: str
    p50: float | None
    p95: float | None
    p99: float | None


def _state_rows(now: datetime) -> list[StateRow]:
    hour, day = selectors.orders_placed_by_state(now - HOUR), selectors.orders_placed_by_state(now - DAY)
    return [StateRow(state, hour.get(state, 0), day.get(state, 0)) for state in OrderState.values if day.get(state)]


def _completed_chart(now: datetime):
    start = (now - HOUR).replace(second=0, microsecond=0) + timedelta(minutes=1)
    per_minute = {
        minute.replace(second=0, microsecond=0): n for minute, n in selectors.orders_completed_per_minute(start).items()
    }
    minutes = [start + timedelta(minutes=i) for i in range(60)]
    columns = [(timezone.localtime(m).strftime("%H:%M"), per_minute.get(m, 0)) for m in minutes]
    return charts.column_chart(columns, caption="Orders completed per minute, last hour"), sum(per_minute.values())


def _step_rows(now: datetime) -> list[StepRow]:
    attempts, durations = selectors.step_attempts(now - HOUR), selectors.step_durations(now - HOUR)
    order = list(STEPS)
    rows = []
    for step in sorted(attempts, key=lambda s: (order.index(s) if s in order else len(order), s)):
        counted = attempts[step]
        p50, p95, p99 = durations.get(step, [None, None, None])
        rows.append(
            StepRow(
                step,
                counted.attempts,
                counted.failed,
                counted.failure_rate * 100,
                charts.meter(counted.failure_rate, alert_above=settings.ALARM_FAILURE_RATE),
                p50,
                p95,
                p99,
            )
        )
    return rows


def build_dashboard(now: datetime | None = None) -> dict:
    """The monitoring page's context."""
    now = now or timezone.now()
    completed_chart, completed_last_hour = _completed_chart(now)
    accept = selectors.accept_to_completed(now - HOUR)
    limit = settings.ORDER_TIME_LIMIT_SECONDS
    open_orders = [
        {
            "state": state,
            "count": o.count,
            "oldest_age_seconds": o.oldest_age_seconds,
            "over_limit": o.oldest_age_seconds > limit,
        }
        for state, o in sorted(open_orders_by_state(now).items(), key=lambda item: OrderState.values.index(item[0]))
    ]
    firing = list(AlarmFiring.objects.filter(resolved_at__isnull=True).order_by("started_at"))
    retrying = retrying_by_step()
    return {
        "now": now,
        "states": _state_rows(now),
        "completed_chart": completed_chart,
        "completed_last_hour": completed_last_hour,
        "steps": _step_rows(now),
        "accept_p50": accept[0] if accept else None,
        "accept_p95": accept[1] if accept else None,
        "open_orders": open_orders,
        "time_limit_seconds": limit,
        "retrying_now": sum(retrying.values()),
        "retrying_by_step": sorted(retrying.items()),
        "backlog": queue_backlog(),
        "clusters": running_clusters(),
        "failed_tasks": selectors.failed_tasks(),
        "alarms_firing": [(RULE_TITLES.get(f.rule, f.rule), f) for f in firing],
        "alarm_recipients": alarm_recipients(),
        "holds": list(PipelineHold.objects.filter(released_at__isnull=True).order_by("placed_at")),
        "holds_waiting": ScheduledRetry.objects.filter(waiting_for__startswith=HELD_PREFIX).count(),
        "breakers": read_breakers(),
        "refunds_by_reason": selectors.refunds_by_reason(now - DAY, now - MONTH),
    }
