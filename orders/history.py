"""An order's history and its attention flag: the one module that writes either.

Every actor writes through here and names itself (`Actor`): the pipeline's steps, a
manager in the back office, Stripe's webhook, the sweeper, the reconciler, an alarm. Each
kind of event has one function; what it knows goes into the event's structured
`parameters`, and `error` carries only what went wrong. Metrics, the monitoring page and
the staff timeline read these same rows.
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import Max, QuerySet
from django.utils import timezone

from framework import facts, log_context, metrics
from framework.activity import record_staff_activity
from framework.compiled_writes import writes_for
from orders.models import FINAL_STATES, ActorKind, EventKind, Order, OrderEvent, OrderState

logger = logging.getLogger(__name__)

Outcome = OrderEvent.Outcome


@dataclass(frozen=True)
class Actor:
    """Who acts on an order: a kind, and for a person their user name."""

    kind: ActorKind
    name: str = ""


PIPELINE = Actor(ActorKind.PIPELINE)
WEBHOOK = Actor(ActorKind.WEBHOOK)
SWEEPER = Actor(ActorKind.SWEEPER)
RECONCILER = Actor(ActorKind.RECONCILER)
# The policy that settles card holds about to lapse (orders/lapsing_holds.py), run on a schedule.
LAPSE_POLICY = Actor(ActorKind.SWEEPER, "authorisation lapse policy")


def manager(username: str) -> Actor:
    """A staff member acting in the back office."""
    return Actor(ActorKind.MANAGER, username)


@dataclass
class StepRun:
    """One attempt of one step on one order: the events it writes carry its step, attempt and duration."""

    step: str
    attempt: int
    started: float = field(default_factory=time.monotonic)
    actor: Actor = PIPELINE

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)


def earlier_attempts(order_id: int, step: str) -> QuerySet[OrderEvent]:
    """The events that number `step`'s attempts on the order: all of the step's events but
    those where it only waited. An attempt may write several events (a redrive's own event and
    its state change), so the next attempt follows their highest `attempt`, not their count."""
    return OrderEvent.objects.filter(order_id=order_id, step=step).exclude(outcome=Outcome.SKIPPED)


def start_run(step: str, order: Order, *, actor: Actor = PIPELINE, earlier: int | None = None) -> StepRun:
    """The next attempt of `step` on `order`, numbered by `earlier_attempts`; `earlier`, when
    the caller read the latest attempt already (the pipeline does as it takes its lease), saves a read."""
    if earlier is None:
        earlier = earlier_attempts(order.pk, step).aggregate(latest=Max("attempt"))["latest"] or 0
    previous = earlier
    log_context.bind(order=order.reference, step=step, attempt=previous + 1)
    return StepRun(step=step, attempt=previous + 1, actor=actor)


def _write(order: Order, run: StepRun, kind: EventKind, outcome: str, **fields) -> OrderEvent:
    """`_event`'s event (`fields` as it takes them), written now and recorded."""
    event = _event(order, run, kind, outcome, **fields)
    # The compiled insert: every state change and step writes one of these (framework/compiled_writes.py).
    writes_for(OrderEvent).insert([event])
    _record_written(order, run, event)
    return event


def _event(
    order: Order,
    run: StepRun,
    kind: EventKind,
    outcome: str,
    *,
    from_state: str = "",
    to_state: str = "",
    error: str = "",
    **parameters,
) -> OrderEvent:
    """The event, not yet written."""
    return OrderEvent(
        order=order,
        kind=kind,
        step=run.step,
        outcome=outcome,
        attempt=run.attempt,
        from_state=from_state or order.state,
        to_state=to_state,
        error=error[:2000],
        parameters=parameters,
        duration_ms=run.elapsed_ms(),
        actor_kind=run.actor.kind,
        actor=run.actor.name,
    )


def _record_written(order: Order, run: StepRun, event: OrderEvent) -> None:
    """What follows an event written: its attempt counted at the commit, a person's act logged."""
    metrics.count_on_commit(lambda: _count_attempt(run.step, event.outcome, event.duration_ms))
    if run.actor.kind == ActorKind.MANAGER:
        # A person's act on an order is in the staff activity log too: an entry that points at
        # this event (its parameters stay here, written once), with the state it moved.
        to_state = event.to_state
        moved = {"state": event.from_state} if to_state else {}
        record_staff_activity(
            actor=run.actor.name,
            what=f"order: {event.get_kind_display().lower()}",
            target=order,
            before=moved,
            after={"state": to_state} if to_state else {},
            order_event=event.pk,
            step=run.step,
        )


def _count_attempt(step: str, outcome: str, duration_ms: int) -> None:
    # Every event is one attempt of its step: each actor is counted the same way.
    metrics.STEP_ATTEMPTS.labels(step, outcome).inc()
    metrics.STEP_DURATION.labels(step).observe(duration_ms / 1000)
    if outcome == Outcome.RETRYING:
        metrics.STEP_RETRIES.labels(step).inc()


def _count_state_change(order: Order, from_state: str) -> None:
    state, currency = order.state, order.currency
    completed_after = (
        (order.completed_at - order.created_at).total_seconds()
        if state == OrderState.COMPLETED and order.completed_at
        else 0
    )

    def record() -> None:
        if from_state == OrderState.PENDING:
            metrics.ORDERS_PLACED.labels(currency).inc()
        if state in FINAL_STATES:
            metrics.ORDERS_ENDED.labels(state, currency).inc()
        if state == OrderState.COMPLETED:
            metrics.ORDER_COMPLETION.observe(completed_after)

    metrics.count_on_commit(record)


def _as_error(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def state_change(
    order: Order, run: StepRun, *, from_state: str, to_state: str, failure_code: str = "", failure_reason: str = ""
) -> OrderEvent:
    """The event of the order's move from `from_state` to `to_state`, not yet written: the
    move's own statement writes it (`transitions.set_state`), then `state_changed` records
    the rest. A failure end keeps its reason as the error.

    The outcome is the actor's: a step that could not go on failed, but a cancellation is
    what the manager asked for, so it succeeded (its reason is still kept)."""
    failed = (failure_code or failure_reason) and to_state != OrderState.CANCELLED
    outcome = Outcome.FAILED if failed else Outcome.SUCCEEDED
    return _event(
        order,
        run,
        EventKind.STATE_CHANGED,
        outcome,
        from_state=from_state,
        to_state=to_state,
        error=failure_reason,
        failure_code=failure_code,
    )


def state_changed(order: Order, run: StepRun, *, from_state: str, written: OrderEvent) -> OrderEvent:
    """The order moved from `from_state` to its current state, and its event (`state_change`)
    was `written` with the move: counted, announced to other systems, a person's act logged."""
    _count_state_change(order, from_state)
    _announce_state(order, from_state)
    _record_written(order, run, written)
    return written


# The facts other systems hear of (framework/facts.py; docs/webhooks.md's catalogue): the
# states an order reaches that a warehouse or an accounting system acts on.
STATE_FACTS: dict[str, str] = {
    OrderState.PAID: "order.paid",
    OrderState.COMPLETED: "order.completed",
    OrderState.FAILED: "order.failed",
    OrderState.PAYMENT_FAILED: "order.failed",
    OrderState.CANCELLED: "order.cancelled",
}


def _announce_state(order: Order, from_state: str) -> None:
    # An order is placed when its stock is reserved: a REJECTED one never was.
    placed = from_state == OrderState.PENDING and order.state == OrderState.VALIDATED
    fact_type = "order.placed" if placed else STATE_FACTS.get(order.state)
    if fact_type and facts.is_wanted(fact_type):
        facts.announce(fact_type, key=order.reference, describe=lambda: describe_order(order))


def describe_order(order: Order) -> dict:
    """An order as its facts carry it (`data` of docs/webhooks/order.schema.json): money as
    decimal strings, times in ISO 8601 with their offset."""
    return {
        "reference": order.reference,
        "state": order.state,
        "email": order.email,
        "currency": order.currency,
        "subtotal": str(order.subtotal),
        "tax": str(order.tax),
        "total": str(order.total),
        "lines": [
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price": str(line.unit_price),
                "total": str(line.line_total),
            }
            for line in order.lines.order_by("pk")
        ],
        "failure_code": order.failure_code,
        "failure_reason": order.failure_reason,
        "created_at": order.created_at.isoformat(),
        "updated_at": timezone.now().isoformat(),
    }


def _announce_refund(order: Order, *, refund: int | None, amount: Decimal, currency: str) -> None:
    if facts.is_wanted("refund.created"):
        data = {"order": order.reference, "refund": refund, "amount": str(amount), "currency": currency}
        facts.announce("refund.created", key=order.reference, describe=lambda: data)


def step_succeeded(order: Order, run: StepRun, detail: str = "", **parameters) -> OrderEvent:
    """A step did its work without moving the order (a receipt stored, an email sent, money settled)."""
    return _write(order, run, EventKind.STEP_SUCCEEDED, Outcome.SUCCEEDED, detail=detail, **parameters)


def step_waiting(order: Order, run: StepRun, why: str) -> OrderEvent:
    """A step found nothing it may do yet (the shopper authenticating, another worker's claim)."""
    return _write(order, run, EventKind.STEP_WAITING, Outcome.SKIPPED, why=why)


def step_retrying(order: Order, run: StepRun, error: Exception, *, due_at: datetime | None = None) -> OrderEvent:
    """An attempt failed and the step's retry policy will try again at `due_at` (as a row the
    tick fires for a side step, in the worker after its backoff for a step of the sale)."""
    due = {"due_at": due_at.isoformat()} if due_at else {}
    return _write(order, run, EventKind.STEP_RETRYING, Outcome.RETRYING, error=_as_error(error), **due)


def step_failed(order: Order, run: StepRun, error: Exception | str) -> OrderEvent:
    """A step failed for good and left the order as it was (a side job, a failure email)."""
    text = error if isinstance(error, str) else _as_error(error)
    return _write(order, run, EventKind.STEP_FAILED, Outcome.FAILED, error=text)


def step_failed_needs_attention(order: Order, run: StepRun, error: Exception) -> OrderEvent:
    """A step that must not undo the sale failed for good: the order is flagged for a manager."""
    _raise_flag(order)
    event = step_failed(order, run, error)
    logger.error("order %s needs attention: %s failed after retries: %s", order.reference, run.step, error)
    return event


def flag_order(order: Order, *, actor: Actor, step: str, finding: str, message: str) -> bool:
    """Ask a manager to look at an order: needs_attention, a history event, an error log.

    `finding` names what was found (a dispute's id, a mismatch of one payment), so a check
    that runs on a schedule records each finding once instead of burying the history.
    Returns whether the order was newly flagged for it.
    """
    return _flag_once(order, StepRun(step=step, attempt=1, actor=actor), EventKind.FLAGGED, finding, message)


def email_uncertain(order: Order, *, actor: Actor, step: str, email: str, notification: int, why: str) -> bool:
    """One of the shopper's emails may or may not have reached them: flag the order for a
    manager (once per email); nothing sends it again unless a manager does."""
    message = (
        f"The {email} email may or may not have reached the shopper; resend it if they ask. "
        f"It is not sent again on its own ({why})."
    )
    run = StepRun(step=step, attempt=1, actor=actor)
    finding = f"notification-{notification}"
    return _flag_once(order, run, EventKind.EMAIL_UNCERTAIN, finding, message, email=email, notification=notification)


def _flag_once(order: Order, run: StepRun, kind: EventKind, finding: str, message: str, **parameters) -> bool:
    if OrderEvent.objects.filter(order=order, kind=kind, step=run.step, parameters__finding=finding).exists():
        return False
    _raise_flag(order)
    _write(order, run, kind, Outcome.FAILED, finding=finding, message=message, **parameters)
    logger.error("order %s needs attention: %s", order.reference, message)
    return True


def clear_flag(order: Order) -> None:
    """The order no longer needs a manager (its receipt and email finally went)."""
    order.needs_attention = False
    Order.objects.filter(pk=order.pk).update(needs_attention=False)


def _raise_flag(order: Order) -> None:
    # A flagged order waits for a manager or the minute sweeper: no worker holds it any more.
    order.needs_attention, order.worked_until = True, None
    Order.objects.filter(pk=order.pk).update(needs_attention=True, updated_at=timezone.now(), worked_until=None)


def refund_requested(
    order: Order,
    *,
    actor: Actor,
    refund: int,
    amount: Decimal,
    currency: str,
    reason: str,
    reason_code: str = "",
    action_token: str = "",
) -> OrderEvent:
    """A manager asked for part or all of a captured payment back (from the form `action_token` names).

    `reason` reads as the history shows it (the listed reason, then the note); `reason_code`
    is the list's code, for counting.
    """
    run = StepRun(step="request_refund", attempt=1, actor=actor)
    return _write(
        order,
        run,
        EventKind.REFUND_REQUESTED,
        Outcome.SUCCEEDED,
        refund=refund,
        amount=str(amount),
        currency=currency,
        requested_by=actor.name,
        reason=reason,
        reason_code=reason_code,
        action_token=action_token,
    )


def refund_succeeded(order: Order, *, refund: int, amount: Decimal, currency: str) -> OrderEvent:
    """The provider gave the refund back to the shopper."""
    run = StepRun(step="refund_payment", attempt=1)
    _announce_refund(order, refund=refund, amount=amount, currency=currency)
    return _write(
        order, run, EventKind.REFUND_SUCCEEDED, Outcome.SUCCEEDED, refund=refund, amount=str(amount), currency=currency
    )


def refund_refused(order: Order, *, refund: int, error: str) -> OrderEvent:
    """The provider refused a refund for good."""
    run = StepRun(step="refund_payment", attempt=1)
    return _write(order, run, EventKind.REFUND_REFUSED, Outcome.FAILED, error=error, refund=refund)


def refund_recorded(order: Order, *, actor: Actor, refunded: Decimal, currency: str) -> OrderEvent:
    """The provider reports refunds we did not make here (Stripe's dashboard), now in our books."""
    run = StepRun(step="stripe_webhook", attempt=1, actor=actor)
    _announce_refund(order, refund=None, amount=refunded, currency=currency)
    return _write(order, run, EventKind.REFUND_RECORDED, Outcome.SUCCEEDED, refunded=str(refunded), currency=currency)


def has_succeeded(order: Order, step: str) -> bool:
    """Whether `step` ever did its work on this order (for jobs that are done once)."""
    return OrderEvent.objects.filter(order=order, step=step, kind=EventKind.STEP_SUCCEEDED).exists()


# --- a manager's acts in the back office ---------------------------------------------------
# Each carries `action_token`, the one-time token of the confirmation form it came from:
# the same form posted twice (a double click, a replayed POST) finds its event and does
# nothing more (`action_done`).


def action_done(order: Order, action_token: str) -> OrderEvent | None:
    """The event a manager's action with this form token wrote on this order, if it ran already."""
    if not action_token:
        return None
    return OrderEvent.objects.filter(order=order, parameters__action_token=action_token).first()


def _manager_event(
    order: Order, *, actor: Actor, step: str, kind: EventKind, outcome: str = Outcome.SUCCEEDED, **parameters
) -> OrderEvent:
    return _write(order, StepRun(step=step, attempt=1, actor=actor), kind, outcome, **parameters)


def order_redriven(
    order: Order,
    run: StepRun,
    *,
    failed_step: str,
    plan: str,
    reason: str,
    action_token: str,
    previous_payment: dict[str, str],
) -> OrderEvent:
    """A manager redrove a FAILED order from the step that failed; the state change follows."""
    return _write(
        order,
        run,
        EventKind.REDRIVEN,
        Outcome.SUCCEEDED,
        redrive=order.redrive_count,
        failed_step=failed_step,
        plan=plan,
        reason=reason,
        action_token=action_token,
        previous_payment=previous_payment,
    )


def step_retry_requested(
    order: Order, *, actor: Actor, retried_step: str, reason: str, action_token: str
) -> OrderEvent:
    """A manager asked for an order's stuck step to run again now."""
    return _manager_event(
        order,
        actor=actor,
        step="retry_step",
        kind=EventKind.STEP_RETRY_REQUESTED,
        retried_step=retried_step,
        reason=reason,
        action_token=action_token,
    )


def email_resent(order: Order, *, actor: Actor, email: str, reason: str, action_token: str) -> OrderEvent:
    """A manager sent one of the shopper's emails again (a new email, marked as a copy)."""
    return _manager_event(
        order,
        actor=actor,
        step="resend_email",
        kind=EventKind.EMAIL_RESENT,
        email=email,
        reason=reason,
        action_token=action_token,
    )


def receipt_regenerated(
    order: Order, *, actor: Actor, receipt: str, detail: str, reason: str, action_token: str
) -> OrderEvent:
    """A manager had a missing receipt rendered and stored (a stored one is never replaced)."""
    return _manager_event(
        order,
        actor=actor,
        step="regenerate_receipt",
        kind=EventKind.RECEIPT_REGENERATED,
        receipt=receipt,
        detail=detail,
        reason=reason,
        action_token=action_token,
    )


def stock_returned(order: Order, *, actor: Actor, units: dict[str, int], reason: str, action_token: str) -> OrderEvent:
    """A manager put units of a sold order back in stock (a return, in the ledger)."""
    return _manager_event(
        order,
        actor=actor,
        step="return_stock",
        kind=EventKind.STOCK_RETURNED,
        units=", ".join(f"{quantity} x {sku}" for sku, quantity in units.items()),
        quantities=units,
        reason=reason,
        action_token=action_token,
    )


def note_added(order: Order, *, actor: Actor, note: str, action_token: str) -> OrderEvent:
    """A manager's internal note on the order (never shown to the shopper)."""
    return _manager_event(
        order, actor=actor, step="note", kind=EventKind.NOTE_ADDED, note=note, action_token=action_token
    )


def marked_handled(order: Order, *, actor: Actor, was: str, note: str, action_token: str) -> OrderEvent:
    """A manager dealt with what the order was flagged for (`was`: what made it need
    attention) and says how in `note`: the flag goes down, and a FAILED order stops needing
    attention until it changes again. A new problem raises the flag again (`_raise_flag`);
    a finding already recorded does not (`_flag_once`)."""
    handled_at = timezone.now()
    order.needs_attention, order.attention_handled_at = False, handled_at
    # updated_at stays: a FAILED order needs attention again only once something changes it.
    Order.objects.filter(pk=order.pk).update(needs_attention=False, attention_handled_at=handled_at)
    return _manager_event(
        order,
        actor=actor,
        step="mark_handled",
        kind=EventKind.MARKED_HANDLED,
        was=was,
        note=note,
        action_token=action_token,
    )


# --- holds and breakers: a step that waits without spending an attempt ---------------------


def step_held(order: Order, *, step: str, attempt: int, actor: Actor, why: str) -> OrderEvent:
    """A manager's hold stops the step: the order waits in its state (the hold's placer acts)."""
    run = StepRun(step=step, attempt=attempt, actor=actor)
    return _write(order, run, EventKind.STEP_HELD, Outcome.SKIPPED, why=why)


def hold_released(order: Order, *, step: str, actor: Actor, side: str, reason: str) -> OrderEvent:
    """The manager released the hold the order's step waited for: it goes on now."""
    # Skipped, as a wait is: it is no attempt of the step.
    return _manager_event(
        order, actor=actor, step=step, kind=EventKind.HOLD_RELEASED, outcome=Outcome.SKIPPED, side=side, reason=reason
    )
