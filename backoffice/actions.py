"""What a manager may do to an order from the back office, each through one function here.

Every action locks the order, checks that it may be done (refusing with `ActionRefused`
and a reason the manager reads), does it, and records it through `orders.history` naming
the manager. Each is safe to double-click: the confirmation form carries a one-time
`action_token` that the action writes into its history event, so the same form posted
twice finds that event and does nothing more; actions that end a state (redrive, cancel)
are refused the second time anyway. No order lock is held across a provider call.

The plans (`backoffice.plans`) are what the confirmation pages show: which steps will run
and what money and stock move. The actions check the same plan again under the order's lock.
"""

import inspect
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import wraps

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backoffice.plans import (
    attention_reason,
    format_money,
    plan_mark_handled,
    plan_redrive,
    plan_retry,
    refusal_to_regenerate_receipt,
    refusal_to_resend_confirmation,
    returnable_units,
    stuck_step,
)
from framework.queue import Task, enqueue_on_commit
from inventory.services import StockLine, StockMove, move_stock, reserve_stock
from orders import history, pipeline
from orders.models import Notification, Order, lock_order
from orders.models import OrderState as S
from orders.notifications import (
    NotificationInProgress,
    NotificationUncertain,
    flag_uncertain_email,
    send_order_email,
)
from orders.services import cancel_order
from orders.steps import describe_shortages
from orders.transitions import REDRIVE_TO, IllegalTransition, set_state, stock_lines
from payments.models import Payment
from payments.refunds import RefundNotAllowed, request_refund
from payments.services import start_new_payment
from receipts.services import PaidWith, issue_receipt


class ActionRefused(Exception):
    """The action cannot be done to this order now; the message says why, for the manager."""


@dataclass(frozen=True)
class ActionResult:
    """What an action did, in a line for the manager; `already_done` when this form had run before."""

    message: str
    already_done: bool = False


def new_action_token() -> str:
    """A one-time token for one confirmation form."""
    return secrets.token_urlsafe(16)


def _already(order: Order, action_token: str) -> ActionResult | None:
    event = history.action_done(order, action_token)
    if event is None:
        return None
    when = timezone.localtime(event.created_at).strftime("%Y-%m-%d %H:%M:%S")
    return ActionResult(
        f"Order {order.reference}: already done by {event.actor} at {when}; nothing more was done.", True
    )


def _require_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise ActionRefused("Give a reason: it goes into the order's history.")
    return reason


class _AlreadyDone(Exception):
    """This form's token is in the order's history already: `result` says by whom and when."""

    def __init__(self, result: ActionResult):
        super().__init__(result.message)
        self.result = result


@contextmanager
def acting_on(order: Order, action_token: str) -> Iterator[Order]:
    """The order, locked in a transaction for the block, unless this form was posted before:
    then the action stops here, and `manager_action` answers with what was done the first time."""
    with transaction.atomic():
        locked = lock_order(order.pk)
        if done := _already(locked, action_token):
            raise _AlreadyDone(done)
        yield locked


def manager_action(act: Callable[..., ActionResult]) -> Callable[..., ActionResult]:
    """The frame every manager action shares: a reason required (when it takes one), and a
    form posted twice (found by `acting_on`) answered with what was done the first time."""
    takes_reason = "reason" in inspect.signature(act).parameters

    @wraps(act)
    def frame(order: Order, **details) -> ActionResult:
        if takes_reason:
            details["reason"] = _require_reason(details["reason"])
        try:
            return act(order, **details)
        except _AlreadyDone as done:
            return done.result

    return frame


# --- redrive -------------------------------------------------------------------------------


@manager_action
def redrive_order(order: Order, *, manager: str, reason: str, action_token: str = "") -> ActionResult:
    """Redrive a FAILED order from the step that failed, as Step Functions' redrive does.

    Under the order's lock: check the plan, reserve its stock again (refused, the order left
    FAILED, when it is gone), make its settled payment ready for a fresh authorisation, count
    the redrive and move FAILED -> VALIDATED; the pipeline takes it on from there once this
    commits. See docs/REDRIVE.md.
    """
    with acting_on(order, action_token) as order:
        plan = plan_redrive(order)
        if plan.refusal:
            raise ActionRefused(plan.refusal)
        lines = list(order.lines.select_related("product"))
        short = reserve_stock(stock_lines(order, lines))
        if short:  # taken since the plan was read: nothing stays reserved
            raise ActionRefused(f"{order.reference} cannot be redriven: {describe_shortages(lines, short)}")
        previous_payment = start_new_payment(order)
        order.redrive_count += 1
        order.save(update_fields=["redrive_count", "updated_at"])
        run = history.start_run("redrive_order", order, actor=history.manager(manager))
        history.order_redriven(
            order,
            run,
            failed_step=plan.failed_step,
            plan=plan.summary,
            reason=reason,
            action_token=action_token,
            previous_payment=previous_payment,
        )
        set_state(order, REDRIVE_TO, run)
        pipeline.enqueue_advance(order.pk)
    return ActionResult(f"Order {order.reference} redriven from {plan.failed_step} (redrive #{order.redrive_count}).")


# --- retry a stuck step --------------------------------------------------------------------

# Which task runs a step that can be stuck; the pipeline's steps all run through advance_order.
RETRY_TASKS = {
    "refund_or_void": Task.REFUND_OR_VOID,
    "send_failure_notification": Task.SEND_FAILURE_NOTIFICATION,
    "publish_order_state": Task.PUBLISH_ORDER_STATE,
}


@manager_action
def retry_stuck_step(order: Order, *, manager: str, reason: str, action_token: str = "") -> ActionResult:
    """Run the stuck step of a flagged (or overdue) order again now: queued once this commits.

    The step itself is idempotent; the token keeps a double click to one request in the history.
    """
    with acting_on(order, action_token) as order:
        if not (step := stuck_step(order)):
            raise ActionRefused(plan_retry(order).refusal)
        history.step_retry_requested(
            order, actor=history.manager(manager), retried_step=step, reason=reason, action_token=action_token
        )
        enqueue_on_commit(RETRY_TASKS.get(step, Task.ADVANCE_ORDER), order.pk)
    return ActionResult(f"Order {order.reference}: {step} queued to run again now.")


# --- resend the confirmation, regenerate the receipt ---------------------------------------


@manager_action
def resend_confirmation(order: Order, *, manager: str, reason: str, action_token: str) -> ActionResult:
    """Send the shopper a copy of their confirmation: a new email, marked as sent again.

    The email is keyed by the form's token, so the same form posted twice sends one email.
    """
    if not action_token:
        raise ActionRefused("This form has expired: open it again.")
    if refusal := refusal_to_resend_confirmation(order):
        raise ActionRefused(refusal)
    try:
        sent = send_order_email(order, Notification.Kind.CONFIRMATION_RESEND, key=action_token)
    except NotificationInProgress:
        sent = False
    except NotificationUncertain as uncertain:
        with transaction.atomic():
            flag_uncertain_email(lock_order(order.pk), uncertain, actor=history.manager(manager), step="resend_email")
        return ActionResult(
            f"Order {order.reference}: the mail server did not confirm it took the copy; it may or may not "
            "reach the shopper, and is not sent again on its own."
        )
    except Exception as error:
        raise ActionRefused(f"{order.reference}: the email could not be sent ({type(error).__name__}: {error}).")
    if not sent:
        return ActionResult(f"Order {order.reference}: this copy was sent already; nothing more was sent.", True)
    with transaction.atomic():
        history.email_resent(
            lock_order(order.pk),
            actor=history.manager(manager),
            email=Notification.Kind.CONFIRMATION,
            reason=reason,
            action_token=action_token,
        )
    return ActionResult(f"Order {order.reference}: a copy of the confirmation was sent to {order.email}.")


@manager_action
def regenerate_receipt(order: Order, *, manager: str, reason: str, action_token: str = "") -> ActionResult:
    """Render and store a sale's missing receipt (never over a stored one); a confirmed order
    waiting for it goes on to its email."""
    with acting_on(order, action_token) as order:
        if refusal := refusal_to_regenerate_receipt(order):
            raise ActionRefused(refusal)
    payment = Payment.objects.filter(order=order).first() or Payment()
    receipt = issue_receipt(order, PaidWith(payment.card_brand, payment.card_last4, payment.provider_reference))
    with acting_on(order, action_token) as order:  # a twin request may have stored it a moment ago
        history.receipt_regenerated(
            order,
            actor=history.manager(manager),
            receipt=receipt.number,
            detail=f"Receipt {receipt.number} stored.",
            reason=reason,
            action_token=action_token,
        )
        if order.state == S.CONFIRMED:
            pipeline.enqueue_advance(order.pk)
    return ActionResult(f"Order {order.reference}: receipt {receipt.number} stored.")


# --- cancel and refund ---------------------------------------------------------------------


@manager_action
def cancel_order_for_manager(order: Order, *, manager: str, reason: str, action_token: str = "") -> ActionResult:
    """A manager cancels an order in progress: stock back, money voided or refunded, the shopper emailed.

    `reason` is shown to the shopper. A second click finds the order final and is refused, so
    the form's `action_token` (taken as every action takes it) is not needed here.
    """
    try:
        cancel_order(order, reason=reason, cancelled_by=manager)
    except IllegalTransition as error:
        raise ActionRefused(f"Not cancelled: {error}.")
    return ActionResult(f"Order {order.reference} cancelled.")


@manager_action
def refund_order(
    order: Order,
    *,
    manager: str,
    reason: str,
    refund_reason: str,
    amount: Decimal | None = None,
    return_units: dict[int, int] | None = None,
    action_token: str = "",
) -> ActionResult:
    """Refund part or all of an order's captured payment, optionally putting units back in stock.

    `refund_reason` is a code from the list of refund reasons (required); `reason` is the
    manager's note for the history.

    `return_units` maps products to units returned to stock, at most what was sold and not
    returned. The refund goes to the provider once this commits (`payments.refunds`), and the
    shopper is emailed when it succeeds.
    """
    returns = {product: units for product, units in (return_units or {}).items() if units}
    with acting_on(order, action_token) as order:
        returnable = returnable_units(order)
        lines = {line.product_id: line for line in order.lines.all()}
        for product_id, units in returns.items():
            if product_id not in lines or units < 0 or units > returnable.get(product_id, 0):
                sku = lines[product_id].sku if product_id in lines else product_id
                raise ActionRefused(
                    f"{order.reference}: {sku} can take back between 0 and {returnable.get(product_id, 0)} units."
                )
        try:
            refund = request_refund(
                order,
                amount,
                requested_by=manager,
                reason_code=refund_reason,
                reason=reason,
                action_token=action_token,
            )
        except RefundNotAllowed as error:
            raise ActionRefused(str(error))
        if returns:
            move_stock(StockMove.RETURN, [StockLine(p, units) for p, units in returns.items()], order_id=order.pk)
            history.stock_returned(
                order,
                actor=history.manager(manager),
                units={lines[p].sku: units for p, units in returns.items()},
                reason=reason,
                action_token=action_token,
            )
    units = sum(returns.values())
    returned = f", {units} unit{'' if units == 1 else 's'} back in stock" if returns else ""
    return ActionResult(
        f"Order {order.reference}: refund of {format_money(refund.amount, refund.currency)} requested{returned}."
    )


# --- notes and bulk ------------------------------------------------------------------------


@manager_action
def add_note(order: Order, *, manager: str, note: str, action_token: str = "") -> ActionResult:
    """An internal note on the order's history, for the next manager to read."""
    note = note.strip()
    if not note:
        raise ActionRefused("The note is empty.")
    with acting_on(order, action_token) as order:
        history.note_added(order, actor=history.manager(manager), note=note[:2000], action_token=action_token)
    return ActionResult(f"Order {order.reference}: note added.")


@manager_action
def mark_handled(order: Order, *, manager: str, reason: str, action_token: str = "") -> ActionResult:
    """Take an order off the attention list once a manager has dealt with what it was flagged
    for (a dispute answered, a mismatch explained, a failed order settled with the shopper);
    `reason` is the manager's note of what was done, kept in the order's history.

    Nothing else changes: a FAILED order may still be redriven, and a new problem (a new
    dispute, a step failing again) raises the flag again.
    """
    with acting_on(order, action_token) as order:
        if not (was := attention_reason(order)):
            raise ActionRefused(plan_mark_handled(order).refusal)
        history.marked_handled(order, actor=history.manager(manager), was=was, note=reason, action_token=action_token)
    return ActionResult(f"Order {order.reference}: marked handled; it no longer needs attention.")


def act_on_orders(
    run: Callable[..., ActionResult], orders: list[Order], *, manager: str, reason: str, action_token: str
) -> tuple[list[ActionResult], list[Order]]:
    """Run one action (`redrive_order`, `retry_stuck_step`, `mark_handled`) on each of these
    orders, at most ORDER_BULK_ACTION_CAP per click.

    Returns each order's result (a refusal is a result too) and the orders left over the cap.
    One token serves the whole click, so posting it twice does each order once.
    """
    cap = settings.ORDER_BULK_ACTION_CAP
    results = []
    for order in orders[:cap]:
        try:
            results.append(run(order, manager=manager, reason=reason, action_token=action_token))
        except ActionRefused as refusal:
            results.append(ActionResult(f"Not done: {refusal}"))  # opens with a word: admin capitalises
    return results, orders[cap:]
