"""Running the side steps' due retries in a test process, as the pipeline tick does in a cluster.

Tasks run inline in tests (`Conf.SYNC`) and no cluster ticks, so a side step that failed
transiently leaves a `ScheduledRetry` and stops; a test that wants its retries run asks for
them here, and each one runs (inline) only once it is due.
"""

from django.utils import timezone

from orders.models import ScheduledRetry
from orders.recovery import fire_due_retries
from tests.support.waiting import wait_until


def run_due_retries(*, timeout: float = 30) -> int:
    """Fire every due retry, waiting for each to fall due, until none is left; returns how many ran."""
    fired = 0
    while ScheduledRetry.objects.exists():
        wait_until(
            lambda: ScheduledRetry.objects.filter(due_at__lte=timezone.now()).exists(),
            timeout=timeout,
            interval=0.02,
            message="a scheduled retry never fell due",
        )
        fired += fire_due_retries(timezone.now())
    return fired
