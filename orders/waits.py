"""Steps that wait instead of running: one mechanism for a manager's hold and an open
circuit breaker.

Before each attempt of a step that calls a provider, the pipeline asks `check_gate`: a hold
on the step's side of the pipeline (`orders.holds`) or its provider's open breaker
(`framework.breakers`) makes the step wait. A waiting step makes no outside call and
spends no attempt: it writes (or moves) its `ScheduledRetry` with `waiting_for` saying why,
due again after STEP_WAIT_RECHECK_SECONDS, and the order stays in its state; the tick
nudges no order with a retry waiting, the sweeper neither. Releasing the hold, or the
probe that closes the breaker, brings every waiting step forward at once (oldest order
first), so orders resume within a tick.

A provider's failure on the way (`provider_failed`) counts towards its breaker; when that
failure leaves the breaker open the step waits then and there, keeping at least one
attempt for after the outage, so an order does not end FAILED for an outage the breaker
saw. The shopper reads a calm "waiting" (`waiting_words`), a manager the reason.
"""

import logging
import smtplib
from dataclasses import dataclass
from datetime import timedelta

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from framework.breakers import BreakerState, Provider, Reading, breaker
from orders import history
from orders.flow import FLOW, Step, next_step, steps_calling
from orders.holds import CACHE_KEY as HOLDS_KEY
from orders.holds import HoldOn, holds_from_cache, holds_on
from orders.models import Order, ScheduledRetry, lock_order
from payments.gateways.base import TransientGatewayError

logger = logging.getLogger(__name__)

BREAKER_PREFIX = "waiting: "
# What counts as the provider failing (not answering, or answering with its own fault): a
# decline, a refusal of our request or our own bug is an answer and counts for nothing.
PROVIDER_FAULTS: dict[str, tuple[type[BaseException], ...]] = {
    Provider.STRIPE: (TransientGatewayError,),
    Provider.SMTP: (smtplib.SMTPException, OSError),
    Provider.S3: (BotoCoreError, ClientError, OSError),
    Provider.SNS: (BotoCoreError, ClientError, OSError),
}
_FLOW_STEPS = frozenset(step.name for steps in FLOW.values() for step in steps)


@dataclass(frozen=True)
class Wait:
    """Why a step waits, and who stands behind it (the manager who held it, or the pipeline)."""

    why: str
    actor: history.Actor
    held: bool


@dataclass(frozen=True)
class Gate:
    """What a step found before its attempt: a reason to wait, and its breaker as read."""

    wait: Wait | None
    reading: Reading | None = None


def breaker_words(provider: str) -> str:
    return f"{BREAKER_PREFIX}{provider} is not answering (circuit breaker open); the step goes on once it does"


def check_gate(step: Step) -> Gate:
    """Whether the step may make its call now (a hold, then its provider's breaker); taking
    the breaker's one probe when it is half-open."""
    if step.provider is None:
        return _held(step, holds_on()) or Gate(None)
    guard = breaker(step.provider)
    try:
        # The holds and the breaker in one round trip to the cache.
        reading, cached = guard.read_with([HOLDS_KEY] if step.held_by else [])
    except Exception as error:  # the cache backend's own errors differ by backend
        # Without the shared cache there is no shared breaker: the step calls its provider
        # and spends its attempts as it did before breakers (it fails open, never stuck).
        # A manager's hold holds even then (read from the database).
        logger.warning("%s breaker not read, its cache is unavailable: %s", step.provider, error)
        return _held(step, holds_on()) or Gate(None)
    if held := _held(step, holds_from_cache(cached.get(HOLDS_KEY)) if step.held_by else {}):
        return held
    try:
        may_call = guard.may_call(reading, probe_seconds=step.lease_seconds())
    except Exception as error:
        logger.warning("%s breaker not read, its cache is unavailable: %s", step.provider, error)
        return Gate(None)
    if not may_call:
        return Gate(Wait(breaker_words(step.provider), history.PIPELINE, held=False), reading)
    return Gate(None, reading)


def _held(step: Step, holds: dict[str, HoldOn]) -> Gate | None:
    """The gate of a step its side's hold stops, if one is on."""
    if step.held_by and (hold := holds.get(step.held_by)):
        return Gate(Wait(hold.why, history.manager(hold.placed_by), held=True))
    return None


def provider_answered(step: Step, gate: Gate) -> None:
    """The step's attempt went through: count it; when it closed the breaker, every step
    that waited for the provider goes on now."""
    if step.provider is None or gate.reading is None:
        return
    try:
        closed = breaker(step.provider).record_success(gate.reading)
    except Exception as error:
        logger.warning("%s breaker not told of a success, its cache is unavailable: %s", step.provider, error)
        return
    if closed:
        resume_waiting(step.provider)


def provider_failed(step: Step, error: Exception) -> Wait | None:
    """Count the failure towards the step's breaker when it is the provider's fault; the
    wait it calls for when the breaker stands open after it."""
    if step.provider is None or not isinstance(error, PROVIDER_FAULTS[step.provider]):
        return None
    guard = breaker(step.provider)
    try:
        guard.record_failure()
        if guard.read().state is BreakerState.CLOSED:
            return None
    except Exception as cache_error:
        logger.warning("%s breaker not told of a failure, its cache is unavailable: %s", step.provider, cache_error)
        return None
    return Wait(breaker_words(step.provider), history.PIPELINE, held=False)


def resume_waiting(provider: str) -> int:
    """Bring forward every step waiting for `provider`'s breaker; how many."""
    return ScheduledRetry.objects.filter(
        step__in=steps_calling(provider), waiting_for__startswith=BREAKER_PREFIX
    ).update(due_at=timezone.now(), waiting_for="")


def _still_due(order: Order, step: Step) -> bool:
    if step.name in _FLOW_STEPS:
        return next_step(order) == step
    return order.is_final  # an end's job


def wait_for(
    order_id: int, step: Step, wait: Wait, *, attempts: int, failed: tuple[history.StepRun, Exception] | None = None
) -> None:
    """Park the step: its `ScheduledRetry` says why and keeps `attempts` (fewer than its
    policy allows); the order's history says so once per reason (and records the failed
    attempt, `failed`, that found the breaker open)."""
    attempts = min(attempts, step.retry.max_attempts - 1)
    due_at = timezone.now() + timedelta(seconds=settings.STEP_WAIT_RECHECK_SECONDS)
    with transaction.atomic():
        order = lock_order(order_id)
        if not _still_due(order, step):
            ScheduledRetry.objects.filter(order=order, step=step.name).delete()
            return
        if failed is not None:
            history.step_retrying(order, failed[0], failed[1], due_at=due_at)
        earlier = ScheduledRetry.objects.filter(order=order, step=step.name).values_list("waiting_for", flat=True)
        told = next(iter(earlier), None) == wait.why
        ScheduledRetry.objects.update_or_create(
            order=order, step=step.name, defaults={"attempt": attempts, "due_at": due_at, "waiting_for": wait.why}
        )
        if not told:
            attempt = attempts + 1
            if wait.held:
                history.step_held(order, step=step.name, attempt=attempt, actor=wait.actor, why=wait.why)
            else:
                history.step_waiting(order, history.StepRun(step=step.name, attempt=attempt), wait.why)


# What the shopper reads about a step that waits: calm, and never the manager's reason.
SHOPPER_WORDS = {
    "process_payment": "Your payment is waiting to go through; there is nothing you need to do.",
    "update_inventory": "Your payment is waiting to be completed; there is nothing you need to do.",
    "generate_receipt": "Your receipt is waiting to be prepared; it follows shortly.",
    "send_notification": "Your confirmation email is waiting to be sent; it follows shortly.",
}


def waiting_words(order: Order) -> str | None:
    """What the shopper's page says while one of the order's steps waits; None otherwise."""
    if order.is_final:
        return None
    for step in order.scheduled_retries.all():
        if step.waiting_for and step.step in SHOPPER_WORDS:
            return SHOPPER_WORDS[step.step]
    return None
