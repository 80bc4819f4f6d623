"""The pipeline's runner: one step at a time with its retry policy, or an order's steps back
to back (`advance_order`).

The order row is the truth; a queue message only nudges it. What runs when is the table in
`orders.flow`; the steps are in `orders.steps`; the state machine is `orders.transitions`.
A step that fails transiently is retried with backoff (as Step Functions' Retry does): the
sale's own steps sleep it in the worker, the side steps wait as a `ScheduledRetry` that the
pipeline tick queues when due (`orders.recovery`), so their outage never holds a worker. One
that fails for good does what its table row says: ends the order FAILED with compensation,
or flags it for a manager while the sale stands.

A database that goes away mid-attempt is not the step failing: nothing of the attempt can be
recorded, not even its failure, and the lease the worker stamped would keep the tick off the
order until it lapsed (over a minute for a payment). The worker waits for the database
instead, for a while, and then runs the attempt again, as any retry would.
"""

import logging
import time
from datetime import timedelta

from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from framework.queue import Task, enqueue, enqueue_on_commit
from orders import history, recovery, waits
from orders.flow import STEPS, Step, WhenExhausted, next_step
from orders.history import StepRun
from orders.models import Order, ScheduledRetry, lock_order
from orders.models import OrderState as S
from orders.steps import After, StepFailed
from orders.transitions import end_order
from payments.gateways.base import GatewayConfigurationError, GatewayError, TransientGatewayError

logger = logging.getLogger(__name__)

PAYMENT_ERROR_REASON = "The payment provider could not process this payment; any amount held is released."
# How long a worker waits for a database that went away mid-attempt (a restart, a failover)
# before it gives the order up to its lease and the tick. After CHAIN_SECONDS of earlier
# steps it still ends well inside the cluster's task timeout (Q_TIMEOUT, 120 s by default).
DATABASE_PATIENCE_SECONDS = 60.0
DATABASE_AWAY = (OperationalError, InterfaceError)


def _fail_order(order_id: int, run: StepRun, error: Exception) -> None:
    with transaction.atomic():
        order = lock_order(order_id)
        if order.is_final:
            return
        if isinstance(error, StepFailed):
            code, reason = error.code, error.reason
        else:
            code, reason = "processing_error", "We could not process your order; no money was taken."
        end_order(order, S.FAILED, run, code=code, reason=reason)


def _flag_order(order_id: int, run: StepRun, error: Exception) -> None:
    """Receipts, emails and refunds never undo a sale: flag the order, the sweeper retries later."""
    with transaction.atomic():
        history.step_failed_needs_attention(lock_order(order_id), run, error)


def _record_failure(order_id: int, run: StepRun, error: Exception) -> None:
    with transaction.atomic():
        history.step_failed(lock_order(order_id), run, error)


EXHAUSTED = {
    WhenExhausted.FAIL_ORDER: _fail_order,
    WhenExhausted.FLAG_ORDER: _flag_order,
    WhenExhausted.RECORD: _record_failure,
}


def run_step(order_id: int, step_name: str, *, order: Order | None = None) -> After:
    """Run one step on one order with its retry policy, recording every attempt; queue the
    order's next step when it moved on.

    `order`, when the caller has just read it, saves reading it again for the first
    attempt; a step locks the row and checks its state again before changing it.
    """
    after, _ = _attempt(order_id, STEPS[step_name], order)
    if after is After.NEXT_STEP:
        enqueue_advance(order_id)
    return after


def enqueue_advance(order_id: int) -> None:
    """Queue the order's next steps once the current transaction commits (at once outside one)."""
    enqueue_on_commit(Task.ADVANCE_ORDER, order_id)


def run_due_retry(retry_id: int) -> None:
    """Run the attempt a `ScheduledRetry` waited for (queued by the pipeline tick once due);
    a no-op when it ran already. The row goes once the attempt is over, unless the attempt
    failed again and moved it on."""
    retry = ScheduledRetry.objects.filter(pk=retry_id).first()
    if retry is None:
        return
    after, _ = _attempt(retry.order_id, STEPS[retry.step], None, attempts_before=retry.attempt)
    # Unless the attempt moved it on: failed again (another attempt), or waits again (another due time).
    ScheduledRetry.objects.filter(pk=retry.pk, attempt=retry.attempt, due_at=retry.due_at).delete()
    if after is After.NEXT_STEP:
        enqueue_advance(retry.order_id)


def _attempt(order_id: int, step: Step, order: Order | None, *, attempts_before: int = 0) -> tuple[After, Order | None]:
    """Run the step with its retry policy; when the database goes away on the way, wait for
    it to answer again (up to DATABASE_PATIENCE_SECONDS) and start the attempt over.

    Returns the outcome and the order the last attempt was given, which a step that moved
    the order on has brought up to date under its lock (`relock`)."""
    patience_ends = time.monotonic() + DATABASE_PATIENCE_SECONDS
    while True:
        try:
            return _attempt_with_retries(order_id, step, order, attempts_before=attempts_before)
        except DATABASE_AWAY as error:
            if connection.in_atomic_block:
                raise  # the caller's transaction is lost with the connection: its caller retries
            logger.warning("order %s %s: the database went away (%s); waiting for it", order_id, step.name, error)
            if not _database_back(patience_ends):
                raise
            order = None  # read afresh: the attempt may have committed part of its work


def _database_answers() -> bool:
    """Whether the database answers a new connection now (a deadlock or a timeout is an
    answer: the step's own retry handles those)."""
    if connection.in_atomic_block:
        return True  # not ours to reconnect; the error goes the ordinary way
    connection.close()  # a broken connection is never reused; the next query opens one
    try:
        connection.ensure_connection()
    except DATABASE_AWAY:
        return False
    return True


def _database_back(deadline: float) -> bool:
    """Wait until the database answers again (True), or until `deadline` (False)."""
    while not _database_answers():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)
    return True


def _attempt_with_retries(
    order_id: int, step: Step, order: Order | None, *, attempts_before: int
) -> tuple[After, Order | None]:
    exhausted = EXHAUSTED[step.when_exhausted]
    for tries in range(attempts_before + 1, step.retry.max_attempts + 1):
        if order is None or tries > attempts_before + 1:
            order = Order.objects.get(pk=order_id)
        gate = waits.check_gate(step)
        if gate.wait is not None:  # held, or its provider is down: no call, no attempt spent
            waits.wait_for(order_id, step, gate.wait, attempts=tries - 1)
            return After.STOP, order
        lease = recovery.take_lease(order_id, step)
        if lease.state is not None and lease.state != order.state:
            order = Order.objects.get(pk=order_id)  # moved on since it was read: the step sees it as it is
        run = history.start_run(step.name, order, earlier=lease.earlier_attempts)
        try:
            after = step.run(order, run)
        except StepFailed as error:
            exhausted(order_id, run, error)
            return After.STOP, order
        except GatewayConfigurationError as error:
            # Our configuration, not the shopper's card: leave the order where it is, loudly.
            _flag_order(order_id, run, error)
            return After.STOP, order
        except Exception as error:
            if isinstance(error, DATABASE_AWAY) and not _database_answers():
                raise  # not the step's failure: it must not use up an attempt (see `_attempt`)
            if isinstance(error, GatewayError) and not isinstance(error, TransientGatewayError):
                # The provider's words stay in the log; the shopper sees a reason meant for them.
                logger.error("order %s %s: payment provider error: %s", order.reference, step.name, error)
                exhausted(order_id, run, StepFailed("payment_error", PAYMENT_ERROR_REASON))
                return After.STOP, order
            logger.warning("order %s %s attempt %d failed: %s", order.reference, step.name, run.attempt, error)
            if wait := waits.provider_failed(step, error):
                # Its provider is down, as its breaker now says: wait for it, keeping an attempt.
                waits.wait_for(order_id, step, wait, attempts=tries, failed=(run, error))
                return After.STOP, order
            if tries == step.retry.max_attempts:
                exhausted(order_id, run, error)
                return After.STOP, order
            delay = step.retry.delay(tries)
            with transaction.atomic():
                locked = lock_order(order_id)
                if step.requeues_retries:
                    due_at = recovery.schedule_retry(locked, step, attempts=tries, delay=delay)
                else:  # recorded too, so "Retrying now" says when the worker tries again
                    due_at = timezone.now() + timedelta(seconds=delay)
                history.step_retrying(locked, run, error, due_at=due_at)
            if step.requeues_retries:
                return After.STOP, order  # the worker is free; the tick queues the retry when due
            time.sleep(delay)
        else:
            waits.provider_answered(step, gate)
            return after, order
    return After.STOP, order


# A chain of steps hands over to the queue after this long, well inside the cluster's task
# timeout (Q_TIMEOUT, 120 s by default) even when every step retries with backoff.
CHAIN_SECONDS = 20.0


def advance_order(order_id: int) -> None:
    """Run the steps the order needs now, one after another in this worker; a no-op for a
    final order.

    Each step commits before the next one starts, exactly as if its message had gone
    through the queue; running it here saves a round trip through the broker per step. The
    chain stops where the order ends or waits (3-D Secure, another worker's email claim),
    and after CHAIN_SECONDS it queues the next step instead. A worker that dies between
    two steps leaves the order in a committed state for the sweeper to re-drive, as a lost
    message would.
    """
    started = time.monotonic()
    # Read once: a step that moves the order on leaves this instance as it committed it
    # (`relock`), lines included, so the next step needs no read of its own.
    order = Order.objects.filter(pk=order_id).prefetch_related("lines").first()
    # Steps that left the state as it was (the receipt) and succeeded in this chain: their
    # work is stored, so whether it is done needs no read again.
    done: list[Step] = []
    while order and (step := next_step(order, done=done)):
        after, order = _attempt(order_id, step, order)
        if after is not After.NEXT_STEP:
            return
        if not step.moves_to:
            done.append(step)
        if time.monotonic() - started > CHAIN_SECONDS:
            enqueue(Task.ADVANCE_ORDER, order_id)
            return
