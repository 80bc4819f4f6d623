"""The order pipeline: the state machine of DESIGN.md, its steps and their retry policies.

    PENDING -> VALIDATED -> PAID -> CONFIRMED -> COMPLETED
    failure ends: REJECTED, PAYMENT_FAILED, FAILED, CANCELLED

The order row is the truth; a queue message only nudges it. Each step locks the order,
checks its state, does its work, records the outcome as an `OrderEvent` and starts the
next step once its transaction commits (in the same worker, see `advance_order`). No lock
is held across a provider call. A step that fails transiently is retried with backoff (as
Step Functions' Retry does); one that fails for good leads to a failure end with
compensation. `set_state` alone writes an order's state.
"""

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from inventory.services import deduct_stock, is_stock_deducted, release_stock, reserve_stock, return_stock
from orders.models import FINAL_STATES, Notification, Order, OrderEvent, OrderLine
from orders.models import OrderState as S
from payments.gateways.base import GatewayConfigurationError, GatewayError, IntentStatus, TransientGatewayError
from payments.services import (
    authentication_expired,
    authorize_payment,
    awaiting_authentication,
    capture_payment,
    compensate_payment,
    record_payment,
)

logger = logging.getLogger(__name__)

TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.VALIDATED, S.REJECTED, S.FAILED, S.CANCELLED}),
    S.VALIDATED: frozenset({S.PAID, S.PAYMENT_FAILED, S.FAILED, S.CANCELLED}),
    S.PAID: frozenset({S.CONFIRMED, S.FAILED, S.CANCELLED}),
    S.CONFIRMED: frozenset({S.COMPLETED, S.CANCELLED}),
    S.COMPLETED: frozenset(),
    S.REJECTED: frozenset(),
    S.PAYMENT_FAILED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}


PAYMENT_ERROR_REASON = "The payment provider could not process this payment; any amount held is released."


class IllegalTransition(Exception):
    pass


class StepFailed(Exception):
    """A step's permanent failure: no retry will help. `reason` may be shown to the shopper."""

    def __init__(self, code: str, reason: str):
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    interval_seconds: float
    backoff_rate: float = 2.0
    max_interval_seconds: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        delay = self.interval_seconds * self.backoff_rate ** (attempt - 1)
        return min(delay, self.max_interval_seconds) * settings.PIPELINE_BACKOFF_SCALE


@dataclass
class StepRun:
    """One attempt of one step on one order: what its history event records."""

    step: str
    attempt: int
    started: float
    actor: str = ""  # the staff member behind a manager's action; empty for the pipeline

    def record(
        self, order: Order, outcome: str, *, from_state: str = "", to_state: str = "", error: str = ""
    ) -> OrderEvent:
        return OrderEvent.objects.create(
            order=order,
            step=self.step,
            outcome=outcome,
            attempt=self.attempt,
            from_state=from_state or order.state,
            to_state=to_state,
            error=error[:2000],
            duration_ms=int((time.monotonic() - self.started) * 1000),
            actor=self.actor,
        )


def set_state(order: Order, new_state: str, run: StepRun, *, failure_code: str = "", failure_reason: str = "") -> None:
    """Move a locked order to `new_state`, refusing any move the transition table forbids."""
    if new_state not in TRANSITIONS[order.state]:
        raise IllegalTransition(f"{order.reference}: {order.state} -> {new_state} is not allowed")
    from_state = order.state
    order.state = new_state
    fields = ["state", "updated_at"]
    if failure_code or failure_reason:
        order.failure_code, order.failure_reason = failure_code, failure_reason
        fields += ["failure_code", "failure_reason"]
    if new_state == S.COMPLETED:
        order.completed_at = timezone.now()
        # Completing means the receipt and the email finally went: their flag is settled.
        order.needs_attention = False
        fields += ["completed_at", "needs_attention"]
    order.save(update_fields=fields)
    if new_state in FINAL_STATES and settings.NOTIFY_SNS_TOPIC_ARN:
        order_id = order.pk
        transaction.on_commit(lambda: enqueue("orders.tasks.publish_order_state", order_id))
    outcome = OrderEvent.Outcome.FAILED if new_state in FINAL_STATES - {S.COMPLETED} else OrderEvent.Outcome.SUCCEEDED
    run.record(order, outcome, from_state=from_state, to_state=new_state, error=failure_reason)
    logger.info("order %s %s -> %s (%s)", order.reference, from_state, new_state, run.step)


def lock_order(order_id: int) -> Order:
    return Order.objects.select_for_update(of=("self",)).get(pk=order_id)


def enqueue_advance(order: Order) -> None:
    """Start the order's next step once the current transaction commits: in this worker, if
    it is running the order's `advance_order`, else through the queue."""
    order_id = order.pk
    transaction.on_commit(lambda: _next_step_due(order_id))


# The order whose steps this thread runs back to back (`advance_order`), and whether the
# step that just committed asked for the next one.
_running = threading.local()


def _next_step_due(order_id: int) -> None:
    if getattr(_running, "order_id", None) == order_id:
        _running.next_step_due = True
    else:
        enqueue("orders.tasks.advance_order", order_id)


def enqueue(func: str, object_id: int, *, group: str = "pipeline") -> None:
    """Queue a task for one row (an order, a refund, a webhook event), now."""
    from django_q.conf import Conf
    from django_q.tasks import async_task

    broker = _broker(Conf.CLUSTER_NAME, repr(Conf.BROKER_CLASS), repr(Conf.REDIS), repr(Conf.ORM))
    q_options = {"group": group, "broker": broker}
    async_task(func, object_id, task_name=f"{func.rsplit('.', 1)[-1]}:{object_id}", q_options=q_options)


@functools.cache
def _broker(*configuration: str):
    """One broker per process and configuration: django-q2 would build a new one for every
    task, which on Redis means a new connection (and a metadata lookup) per enqueue."""
    from django_q.brokers import get_broker

    return get_broker()


# --- the steps, in the order an order goes through them ---------------------------------


def validate_order(order: Order, run: StepRun) -> None:
    """The step for an order still PENDING: `reserve_or_reject` under the order's lock.

    Orders placed through `place_order` are validated as they are accepted; this step
    re-drives one that was written PENDING and never validated.
    """
    with transaction.atomic():
        order = lock_order(order.pk)
        if order.state != S.PENDING:
            return
        reserve_or_reject(order, list(order.lines.select_related("product")), run)


def reserve_or_reject(order: Order, lines: list[OrderLine], run: StepRun) -> None:
    """PENDING -> VALIDATED with every line reserved, or REJECTED naming all short lines.

    Runs in the caller's transaction, on an order it has locked or has just written.
    """
    shortages = reserve_stock(lines)
    if shortages:
        reason = "; ".join(f"{s.sku}: {s.requested} requested, {s.available} available" for s in shortages)
        end_order(order, S.REJECTED, run, code="out_of_stock", reason=f"Not enough stock: {reason}.")
    else:
        set_state(order, S.VALIDATED, run)
        enqueue_advance(order)


def process_payment(order: Order, run: StepRun) -> None:
    """VALIDATED -> PAID once the payment is authorised, or PAYMENT_FAILED on a decline."""
    if order.state != S.VALIDATED:
        return
    result = authorize_payment(order)  # outside any lock: a network call
    with transaction.atomic():
        order = lock_order(order.pk)
        if order.state != S.VALIDATED:
            return
        was_waiting = awaiting_authentication(order)
        payment = record_payment(order, result)
        if result.status in (IntentStatus.AUTHORIZED, IntentStatus.CAPTURED):
            set_state(order, S.PAID, run)
            enqueue_advance(order)
        elif result.status in (IntentStatus.DECLINED, IntentStatus.VOIDED):
            end_order(
                order,
                S.PAYMENT_FAILED,
                run,
                code=result.decline_code or ("card_declined" if result.status == IntentStatus.DECLINED else "canceled"),
                reason=result.shopper_message or "Your payment was declined.",
            )
        elif authentication_expired(payment):
            # Compensation cancels the intent, so a late authentication cannot charge.
            end_order(
                order,
                S.PAYMENT_FAILED,
                run,
                code="authentication_expired",
                reason="The payment was not authenticated in time; no money was taken.",
            )
        elif not was_waiting:
            # Waiting for the shopper (3-D Secure): a webhook or the sweeper moves it on.
            run.record(order, OrderEvent.Outcome.SKIPPED, error=f"payment {result.status}")


def update_inventory(order: Order, run: StepRun) -> None:
    """PAID -> CONFIRMED: the reservation becomes a deduction, then the payment is captured."""
    with transaction.atomic():
        order = lock_order(order.pk)
        if order.state != S.PAID:
            return
        if not is_stock_deducted(order):
            deduct_stock(order)
    result = capture_payment(order)  # after the deduction, outside the lock
    with transaction.atomic():
        order = lock_order(order.pk)
        if order.state != S.PAID:
            return
        record_payment(order, result)
        set_state(order, S.CONFIRMED, run)
        enqueue_advance(order)


def generate_receipt(order: Order, run: StepRun) -> None:
    """Render and store the PDF receipt of a confirmed order (once)."""
    from receipts.services import issue_receipt

    if order.state != S.CONFIRMED:
        return
    issue_receipt(order)
    with transaction.atomic():
        order = lock_order(order.pk)
        run.record(order, OrderEvent.Outcome.SUCCEEDED)
        enqueue_advance(order)


def send_notification(order: Order, run: StepRun) -> None:
    """Email the shopper their confirmation (at most once), then COMPLETED."""
    from orders.notifications import NotificationInProgress, send_order_email

    if order.state != S.CONFIRMED:
        return
    try:
        send_order_email(order, Notification.Kind.CONFIRMATION)
    except NotificationInProgress as busy:
        # Another worker is sending it and completes the order; if it died, its claim
        # goes stale and the sweeper brings the order back here.
        run.record(order, OrderEvent.Outcome.SKIPPED, error=str(busy))
        return
    with transaction.atomic():
        order = lock_order(order.pk)
        if order.state == S.CONFIRMED:
            set_state(order, S.COMPLETED, run)


def send_failure_notification(order: Order, run: StepRun) -> None:
    """Tell the shopper we could not process their order (at most once)."""
    from orders.notifications import NotificationInProgress, send_order_email

    if order.state not in (S.REJECTED, S.PAYMENT_FAILED, S.FAILED):
        return
    try:
        sent = send_order_email(order, Notification.Kind.FAILURE)
    except NotificationInProgress as busy:
        run.record(order, OrderEvent.Outcome.SKIPPED, error=str(busy))
        return
    run.record(order, OrderEvent.Outcome.SUCCEEDED if sent else OrderEvent.Outcome.SKIPPED)


def publish_order_state(order: Order, run: StepRun) -> None:
    """Publish a final order state to the SNS topic (once in the normal path)."""
    from orders.sns import publish_final_state

    if not order.is_final or not settings.NOTIFY_SNS_TOPIC_ARN:
        return
    # A final state never changes, so one successful publish per order is the whole job.
    if OrderEvent.objects.filter(order=order, step=run.step, outcome=OrderEvent.Outcome.SUCCEEDED).exists():
        return
    message_id = publish_final_state(order)
    run.record(order, OrderEvent.Outcome.SUCCEEDED, error=f"SNS message {message_id}")


def refund_or_void(order: Order, run: StepRun) -> None:
    """Compensation: leave a failed or cancelled order with no net charge."""
    if order.state not in (S.PAYMENT_FAILED, S.FAILED, S.CANCELLED):
        return  # a stray message must never refund a sale that stands
    result = compensate_payment(order)
    with transaction.atomic():
        order = lock_order(order.pk)
        if result is not None:
            record_payment(order, result)
        run.record(order, OrderEvent.Outcome.SUCCEEDED, error="" if result else "no payment to compensate")


# --- failure ends and compensation -------------------------------------------------------


def end_order(order: Order, state: str, run: StepRun, *, code: str, reason: str) -> None:
    """Move a locked order to a failure end, giving back its stock; money follows on commit.

    The state changes first, in this transaction, so no other worker advances the order
    while its payment is being voided or refunded.
    """
    if is_stock_deducted(order):
        return_stock(order)
    elif order.state in (S.VALIDATED, S.PAID):
        release_stock(order)
    set_state(order, state, run, failure_code=code, failure_reason=reason)
    order_id = order.pk
    if state != S.REJECTED:
        transaction.on_commit(lambda: enqueue("orders.tasks.compensate_order", order_id))
    if state != S.CANCELLED:
        transaction.on_commit(lambda: enqueue("orders.tasks.notify_failure", order_id))


def cancel_order(order: Order, *, reason: str = "Cancelled by the shop.", cancelled_by: str = "") -> Order:
    """A manager cancels an order that is not final: stock back, payment voided or refunded.

    `reason` is shown to the shopper; `cancelled_by` goes into the history only.
    """
    with transaction.atomic():
        locked = lock_order(order.pk)
        if locked.is_final:
            raise IllegalTransition(f"{locked.reference} is {locked.state} and cannot be cancelled")
        run = new_run("cancel_order", locked)
        run.actor = cancelled_by
        end_order(locked, S.CANCELLED, run, code="cancelled", reason=reason)
    return locked


def _fail_after_retries(order_id: int, run: StepRun, error: Exception) -> None:
    with transaction.atomic():
        order = lock_order(order_id)
        if order.is_final:
            return
        if isinstance(error, StepFailed):
            code, reason = error.code, error.reason
        else:
            code, reason = "processing_error", "We could not process your order; no money was taken."
        end_order(order, S.FAILED, run, code=code, reason=reason)


def _flag_for_attention(order_id: int, run: StepRun, error: Exception) -> None:
    """Receipts and notifications never undo a sale: flag the order, the sweeper retries later."""
    with transaction.atomic():
        order = lock_order(order_id)
        Order.objects.filter(pk=order_id).update(needs_attention=True, updated_at=timezone.now())
        run.record(order, OrderEvent.Outcome.FAILED, error=f"{type(error).__name__}: {error}")
    logger.error("order %s needs attention: %s failed after retries: %s", order.reference, run.step, error)


def _log_only(order_id: int, run: StepRun, error: Exception) -> None:
    with transaction.atomic():
        run.record(lock_order(order_id), OrderEvent.Outcome.FAILED, error=f"{type(error).__name__}: {error}")


@dataclass(frozen=True)
class Step:
    run: Callable[[Order, StepRun], None]  # given the order as read just before the attempt
    retry: RetryPolicy
    on_exhausted: Callable[[int, StepRun, Exception], None]


STEPS: dict[str, Step] = {
    "validate_order": Step(validate_order, RetryPolicy(3, 0.2), _fail_after_retries),
    "process_payment": Step(process_payment, RetryPolicy(4, 0.5), _fail_after_retries),
    "update_inventory": Step(update_inventory, RetryPolicy(4, 0.5), _fail_after_retries),
    "generate_receipt": Step(generate_receipt, RetryPolicy(3, 1.0), _flag_for_attention),
    "send_notification": Step(send_notification, RetryPolicy(5, 1.0), _flag_for_attention),
    "send_failure_notification": Step(send_failure_notification, RetryPolicy(5, 1.0), _log_only),
    "refund_or_void": Step(refund_or_void, RetryPolicy(6, 1.0), _flag_for_attention),
    "publish_order_state": Step(publish_order_state, RetryPolicy(4, 1.0), _flag_for_attention),
}


def next_step(order: Order) -> str | None:
    """Which step moves this order on, read from its state and data alone."""
    if order.state == S.PENDING:
        return "validate_order"
    if order.state == S.VALIDATED:
        return "process_payment"
    if order.state == S.PAID:
        return "update_inventory"
    if order.state == S.CONFIRMED:
        from receipts.models import Receipt

        if not Receipt.objects.filter(order=order, stored_at__isnull=False).exists():
            return "generate_receipt"
        return "send_notification"
    return None


def new_run(step: str, order: Order) -> StepRun:
    previous = OrderEvent.objects.filter(order=order, step=step).exclude(outcome=OrderEvent.Outcome.SKIPPED).count()
    return StepRun(step=step, attempt=previous + 1, started=time.monotonic())


def run_step(order_id: int, step_name: str, *, order: Order | None = None) -> None:
    """Run one step on one order with its retry policy, recording every attempt.

    `order`, when the caller has just read it, saves reading it again for the first
    attempt; a step locks the row and checks its state again before changing it.
    """
    step = STEPS[step_name]
    for tries in range(1, step.retry.max_attempts + 1):
        if order is None or tries > 1:
            order = Order.objects.get(pk=order_id)
        run = new_run(step_name, order)
        try:
            step.run(order, run)
            return
        except StepFailed as error:
            step.on_exhausted(order_id, run, error)
            return
        except GatewayConfigurationError as error:
            # Our configuration, not the shopper's card: leave the order where it is, loudly.
            _flag_for_attention(order_id, run, error)
            return
        except Exception as error:
            if isinstance(error, GatewayError) and not isinstance(error, TransientGatewayError):
                # The provider's words stay in the log; the shopper sees a reason meant for them.
                logger.error("order %s %s: payment provider error: %s", order.reference, step_name, error)
                step.on_exhausted(order_id, run, StepFailed("payment_error", PAYMENT_ERROR_REASON))
                return
            logger.warning("order %s %s attempt %d failed: %s", order.reference, step_name, run.attempt, error)
            if tries == step.retry.max_attempts:
                step.on_exhausted(order_id, run, error)
                return
            with transaction.atomic():
                run.record(lock_order(order_id), OrderEvent.Outcome.RETRYING, error=f"{type(error).__name__}: {error}")
            time.sleep(step.retry.delay(tries))


# A chain of steps hands over to the queue after this long, well inside the cluster's task
# timeout (Q_TIMEOUT, 120 s by default) even when every step retries with backoff.
CHAIN_SECONDS = 20.0


def advance_order(order_id: int) -> None:
    """Run the steps the order needs now, one after another in this worker; a no-op for a
    final order.

    Each step still commits before the next one starts, exactly as if its message had gone
    through the queue; running it here saves a round trip through the broker per step. The
    chain stops where the order ends or waits (3-D Secure, another worker's email claim),
    and after CHAIN_SECONDS it queues the next step instead. A worker that dies between
    two steps leaves the order in a committed state for the sweeper to re-drive, as a lost
    message would.
    """
    started = time.monotonic()
    _running.order_id = order_id
    try:
        while (order := Order.objects.filter(pk=order_id).first()) and (step_name := next_step(order)):
            _running.next_step_due = False
            run_step(order_id, step_name, order=order)
            if not _running.next_step_due:
                return
            if time.monotonic() - started > CHAIN_SECONDS:
                enqueue("orders.tasks.advance_order", order_id)
                return
    finally:
        _running.order_id = None

