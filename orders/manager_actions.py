"""What a manager may do to an order from the back office, each through one function here.

Every action locks the order, checks that it may be done (refusing with `ActionRefused`
and a reason the manager reads), does it, and records it through `orders.history` naming
the manager. Each is safe to double-click: the confirmation form carries a one-time
`action_token` that the action writes into its history event, so the same form posted
twice finds that event and does nothing more; actions that end a state (redrive, cancel)
are refused the second time anyway. No order lock is held across a provider call.

The plans (`plan_redrive`, `plan_cancel`, ...) are what the confirmation pages show: which
steps will run and what money and stock move. The actions check the same plan again under
the order's lock.
"""

import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from framework.queue import Task, enqueue_on_commit
from inventory.models import StockMovement
from inventory.services import StockLine, StockMove, is_stock_deducted, move_stock, reserve_stock, shortages
from orders import history, pipeline
from orders.flow import FLOW, next_step
from orders.models import FAILURE_ENDS, EventKind, Notification, Order, OrderEvent, lock_order
from orders.models import OrderState as S
from orders.notifications import (
    NotificationInProgress,
    NotificationUncertain,
    flag_uncertain_email,
    send_order_email,
)
from orders.services import cancel_order
from orders.steps import describe_shortages, retired_lines
from orders.transitions import REDRIVE_TO, IllegalTransition, set_state, stock_lines
from payments.models import Payment
from payments.refunds import RefundNotAllowed, refundable_amount, request_refund
from payments.services import is_money_held, start_new_payment
from receipts.models import Receipt
from receipts.services import PaidWith, issue_receipt

# The happy path's steps in order: what a redrive runs again from VALIDATED.
HAPPY_PATH = [step.name for state in (S.PENDING, S.VALIDATED, S.PAID, S.CONFIRMED) for step in FLOW[state]]


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


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount} {currency}"


# --- redrive -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepPlan:
    step: str
    runs: bool
    why: str


@dataclass(frozen=True)
class RedrivePlan:
    """What a redrive of this order would do, or why it cannot be done (`refusal`)."""

    order: Order
    failed_step: str = ""
    failed_in: str = ""
    failed_at: object = None
    steps: list[StepPlan] = field(default_factory=list)
    money: str = ""
    stock: str = ""
    refusal: str = ""

    @property
    def summary(self) -> str:
        runs = ", ".join(step.step for step in self.steps if step.runs)
        return f"runs {runs}. {self.stock} {self.money}"


def _failure_event(order: Order) -> OrderEvent | None:
    """The state change that last ended this order FAILED."""
    return (
        OrderEvent.objects.filter(order=order, kind=EventKind.STATE_CHANGED, to_state=S.FAILED).order_by("-id").first()
    )


def _compensation_settled(order: Order, failed: OrderEvent) -> bool:
    """Whether the compensation queued on entering FAILED has run since, leaving no money held."""
    compensated = OrderEvent.objects.filter(
        order=order, step="refund_or_void", kind=EventKind.STEP_SUCCEEDED, id__gt=failed.id
    ).exists()
    return compensated and not is_money_held(order)


def plan_redrive(order: Order) -> RedrivePlan:
    """Whether this order can be redriven now, and what the redrive would run and move.

    Read without locks for the confirmation page; `redrive_order` reads it again under the
    order's lock and reserves the stock for real.
    """
    if order.state != S.FAILED:
        return RedrivePlan(order, refusal=f"{order.reference} is {order.state}: only a FAILED order can be redriven.")
    failed = _failure_event(order)
    if failed is None or failed.from_state not in (S.PENDING, S.VALIDATED, S.PAID):
        return RedrivePlan(order, refusal=f"{order.reference}: its history records no failed step to redrive from.")
    base: dict[str, Any] = {"failed_step": failed.step, "failed_in": failed.from_state, "failed_at": failed.created_at}
    limit = timezone.now() - timedelta(days=settings.ORDER_REDRIVE_DAYS)
    if failed.created_at < limit:
        when = timezone.localtime(failed.created_at).strftime("%Y-%m-%d")
        return RedrivePlan(
            order,
            **base,
            refusal=f"{order.reference} failed on {when}, more than {settings.ORDER_REDRIVE_DAYS} days ago: "
            "too late to redrive (ORDER_REDRIVE_DAYS).",
        )
    if not _compensation_settled(order, failed):
        return RedrivePlan(
            order,
            **base,
            refusal=f"{order.reference}: its compensation has not settled yet (the payment may still hold money). "
            "Wait for it, or retry its stuck step.",
        )
    lines = list(order.lines.select_related("product"))
    short = [s for s in shortages(stock_lines(order, lines)) if s.available < s.requested] + retired_lines(lines)
    if short:
        return RedrivePlan(
            order, **base, refusal=f"{order.reference} cannot be redriven: {describe_shortages(lines, short)}"
        )
    return RedrivePlan(
        order, **base, steps=_redrive_steps(failed), money=_redrive_money(order), stock=_redrive_stock(lines)
    )


def _redrive_steps(failed: OrderEvent) -> list[StepPlan]:
    """Each happy-path step and whether the redrive runs it: from the payment on, since
    compensation voided the hold whichever step failed."""
    plans = []
    for name in HAPPY_PATH:
        if name == "validate_order":
            why = (
                "failed here: the redrive reserves the stock now"
                if failed.step == name
                else ("succeeded: not run again; the redrive reserves the stock it gave back on failing")
            )
            plans.append(StepPlan(name, False, why))
        elif name == failed.step:
            plans.append(StepPlan(name, True, "failed here: runs again"))
        elif name == "process_payment" and failed.from_state == S.PAID:
            plans.append(StepPlan(name, True, "succeeded, but its hold was voided when the order failed: asks again"))
        else:
            plans.append(StepPlan(name, True, "not reached yet: runs"))
    return plans


def _redrive_money(order: Order) -> str:
    payment = Payment.objects.filter(order=order).first()
    before = (
        f" The earlier payment {payment.provider_reference} is {payment.status} and is not touched."
        if payment and payment.provider_reference
        else ""
    )
    return (
        f"A new authorisation of {_money(order.total, order.currency)} is asked on {order.payment_method}, "
        f"captured once the stock is deducted.{before}"
    )


def _redrive_stock(lines) -> str:
    return "Reserves " + ", ".join(f"{line.quantity} x {line.sku}" for line in lines) + " again."


def redrive_order(order: Order, *, manager: str, reason: str, action_token: str = "") -> ActionResult:
    """Redrive a FAILED order from the step that failed, as Step Functions' redrive does.

    Under the order's lock: check the plan, reserve its stock again (refused, the order left
    FAILED, when it is gone), make its settled payment ready for a fresh authorisation, count
    the redrive and move FAILED -> VALIDATED; the pipeline takes it on from there once this
    commits. See docs/REDRIVE.md.
    """
    reason = _require_reason(reason)
    with transaction.atomic():
        order = lock_order(order.pk)
        if done := _already(order, action_token):
            return done
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
    "refund_or_void": Task.COMPENSATE_ORDER,
    "send_failure_notification": Task.NOTIFY_FAILURE,
    "publish_order_state": Task.PUBLISH_ORDER_STATE,
}


def is_overdue(order: Order) -> bool:
    """Whether an order in progress has waited longer than the sweeper allows a step."""
    limit = timezone.now() - timedelta(seconds=settings.ORDER_STUCK_AFTER_SECONDS)
    return not order.is_final and order.updated_at < limit


def stuck_step(order: Order) -> str:
    """The step a manager's retry would run now, or "" when nothing is stuck.

    A flagged or overdue order in progress: its next step. An order that ended without a
    sale whose money may still be held: its compensation. A flagged end whose SNS publish
    failed: the publish.
    """
    if not order.is_final:
        step = next_step(order)
        return step.name if step and (order.needs_attention or is_overdue(order)) else ""
    if order.state in FAILURE_ENDS - {S.REJECTED} and is_money_held(order):
        return "refund_or_void"
    if (
        order.needs_attention
        and settings.NOTIFY_SNS_TOPIC_ARN
        and not history.has_succeeded(order, "publish_order_state")
    ):
        return "publish_order_state"
    return ""


def retry_stuck_step(order: Order, *, manager: str, reason: str, action_token: str = "") -> ActionResult:
    """Run the stuck step of a flagged (or overdue) order again now: queued once this commits.

    The step itself is idempotent; the token keeps a double click to one request in the history.
    """
    reason = _require_reason(reason)
    with transaction.atomic():
        order = lock_order(order.pk)
        if done := _already(order, action_token):
            return done
        step = stuck_step(order)
        if not step:
            raise ActionRefused(f"{order.reference} ({order.state}) has no stuck step to retry.")
        history.step_retry_requested(
            order, actor=history.manager(manager), retried_step=step, reason=reason, action_token=action_token
        )
        enqueue_on_commit(RETRY_TASKS.get(step, Task.ADVANCE_ORDER), order.pk)
    return ActionResult(f"Order {order.reference}: {step} queued to run again now.")


# --- resend the confirmation, regenerate the receipt ---------------------------------------


def can_resend_confirmation(order: Order) -> str:
    """Why the confirmation cannot be sent again ("" when it can): it must have gone once, or
    may have (the mail server never confirmed it)."""
    sent = Notification.objects.filter(
        order=order,
        kind=Notification.Kind.CONFIRMATION,
        status__in=[Notification.Status.SENT, Notification.Status.UNCERTAIN],
    ).exists()
    return "" if sent else f"{order.reference} has no confirmation sent yet: retry its stuck step instead."


def resend_confirmation(order: Order, *, manager: str, reason: str, action_token: str) -> ActionResult:
    """Send the shopper a copy of their confirmation: a new email, marked as sent again.

    The email is keyed by the form's token, so the same form posted twice sends one email.
    """
    reason = _require_reason(reason)
    if not action_token:
        raise ActionRefused("This form has expired: open it again.")
    if refusal := can_resend_confirmation(order):
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


def can_regenerate_receipt(order: Order) -> str:
    """Why the receipt cannot be regenerated ("" when it can): a sale without a stored receipt."""
    if order.state not in (S.CONFIRMED, S.COMPLETED):
        return f"{order.reference} is {order.state}: only a sale has a receipt."
    receipt = Receipt.objects.filter(order=order, stored_at__isnull=False).first()
    if receipt:
        return f"{order.reference} has its receipt {receipt.number} stored; a stored receipt is never replaced."
    return ""


def regenerate_receipt(order: Order, *, manager: str, reason: str, action_token: str = "") -> ActionResult:
    """Render and store a sale's missing receipt (never over a stored one); a confirmed order
    waiting for it goes on to its email."""
    reason = _require_reason(reason)
    with transaction.atomic():
        order = lock_order(order.pk)
        if done := _already(order, action_token):
            return done
        if refusal := can_regenerate_receipt(order):
            raise ActionRefused(refusal)
    payment = Payment.objects.filter(order=order).first() or Payment()
    receipt = issue_receipt(order, PaidWith(payment.card_brand, payment.card_last4, payment.provider_reference))
    with transaction.atomic():
        order = lock_order(order.pk)
        if done := _already(order, action_token):  # a twin request stored it a moment ago
            return done
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


@dataclass(frozen=True)
class MoneyPlan:
    """What a cancellation or refund would move, in words, or why it cannot be done."""

    money: str = ""
    stock: str = ""
    refusal: str = ""


def plan_cancel(order: Order) -> MoneyPlan:
    """What cancelling this order would do to its money and stock."""
    if order.is_final:
        return MoneyPlan(refusal=f"{order.reference} is {order.state} and cannot be cancelled.")
    units = ", ".join(f"{line.quantity} x {line.sku}" for line in order.lines.all())
    if is_stock_deducted(order.pk):
        stock = f"Returns {units} to stock (a return in the ledger)."
    elif order.state in (S.VALIDATED, S.PAID):
        stock = f"Releases the reservation of {units}."
    else:
        stock = "No stock is held."
    payment = Payment.objects.filter(order=order).first()
    if payment is None or payment.status in (Payment.Status.PENDING, Payment.Status.DECLINED):
        money = "No payment was taken; any authorisation still being asked for is voided."
    elif payment.status in (Payment.Status.AUTHORIZED, Payment.Status.REQUIRES_ACTION):
        money = f"Voids the hold of {_money(payment.amount, payment.currency)}: the shopper is not charged."
    else:
        left = payment.amount - payment.amount_refunded
        money = f"Refunds {_money(left, payment.currency)} captured ({payment.status})."
    return MoneyPlan(money=money + " The shopper is emailed that the order was cancelled.", stock=stock)


def cancel_order_for_manager(order: Order, *, manager: str, reason: str) -> ActionResult:
    """A manager cancels an order in progress: stock back, money voided or refunded, the shopper emailed.

    `reason` is shown to the shopper. A second click finds the order final and is refused.
    """
    reason = _require_reason(reason)
    try:
        cancel_order(order, reason=reason, cancelled_by=manager)
    except IllegalTransition as error:
        raise ActionRefused(f"Not cancelled: {error}.")
    return ActionResult(f"Order {order.reference} cancelled.")


def returnable_units(order: Order) -> dict[int, int]:
    """Per product, the units of this order sold and not returned yet (what a refund may put back)."""
    rows = (
        StockMovement.objects.filter(
            order_id=order.pk, reason__in=[StockMovement.Reason.SALE, StockMovement.Reason.RETURN]
        )
        .values("product_id")
        .annotate(net=Sum("quantity"))
    )
    return {row["product_id"]: -row["net"] for row in rows if row["net"] < 0}


def plan_refund(order: Order) -> MoneyPlan:
    """What may be refunded of this order: the money left, and the units that may go back to stock."""
    payment = Payment.objects.filter(order=order).first()
    if payment is None or payment.status not in (Payment.Status.CAPTURED, Payment.Status.PARTIALLY_REFUNDED):
        status = payment.status if payment else "no payment"
        return MoneyPlan(refusal=f"{order.reference} has no captured payment to refund ({status}).")
    left = refundable_amount(payment)
    if left <= 0:
        return MoneyPlan(refusal=f"{order.reference}: nothing is left to refund.")
    returnable = returnable_units(order)
    units = ", ".join(f"{line.sku}: {returnable.get(line.product_id, 0)}" for line in order.lines.all())
    return MoneyPlan(
        money=f"Up to {_money(left, payment.currency)} can be refunded to the shopper's card "
        f"({_money(payment.amount_refunded, payment.currency)} refunded so far). "
        "The shopper is emailed once it is done.",
        stock=f"Units that may go back to stock (a return in the ledger): {units}. "
        "Leave them at 0 to keep the stock as it is.",
    )


def refund_order(
    order: Order,
    *,
    manager: str,
    reason: str,
    amount: Decimal | None = None,
    return_units: dict[int, int] | None = None,
    action_token: str = "",
) -> ActionResult:
    """Refund part or all of an order's captured payment, optionally putting units back in stock.

    `return_units` maps products to units returned to stock, at most what was sold and not
    returned. The refund goes to the provider once this commits (`payments.refunds`), and the
    shopper is emailed when it succeeds.
    """
    reason = _require_reason(reason)
    returns = {product: units for product, units in (return_units or {}).items() if units}
    with transaction.atomic():
        order = lock_order(order.pk)
        if done := _already(order, action_token):
            return done
        returnable = returnable_units(order)
        lines = {line.product_id: line for line in order.lines.all()}
        for product_id, units in returns.items():
            if product_id not in lines or units < 0 or units > returnable.get(product_id, 0):
                sku = lines[product_id].sku if product_id in lines else product_id
                raise ActionRefused(
                    f"{order.reference}: {sku} can take back between 0 and {returnable.get(product_id, 0)} units."
                )
        try:
            refund = request_refund(order, amount, requested_by=manager, reason=reason, action_token=action_token)
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
        f"Order {order.reference}: refund of {_money(refund.amount, refund.currency)} requested{returned}."
    )


# --- notes and bulk ------------------------------------------------------------------------


def add_note(order: Order, *, manager: str, note: str, action_token: str = "") -> ActionResult:
    """An internal note on the order's history, for the next manager to read."""
    note = note.strip()
    if not note:
        raise ActionRefused("The note is empty.")
    with transaction.atomic():
        order = lock_order(order.pk)
        if done := _already(order, action_token):
            return done
        history.note_added(order, actor=history.manager(manager), note=note[:2000], action_token=action_token)
    return ActionResult(f"Order {order.reference}: note added.")


BULK_ACTIONS = {"redrive": redrive_order, "retry": retry_stuck_step}


def act_on_orders(
    action: str, orders: list[Order], *, manager: str, reason: str, action_token: str
) -> tuple[list[ActionResult], list[Order]]:
    """Redrive or retry each of these orders, at most ORDER_BULK_ACTION_CAP per click.

    Returns each order's result (a refusal is a result too) and the orders left over the cap.
    One token serves the whole click, so posting it twice does each order once.
    """
    run = BULK_ACTIONS[action]
    cap = settings.ORDER_BULK_ACTION_CAP
    results = []
    for order in orders[:cap]:
        try:
            results.append(run(order, manager=manager, reason=reason, action_token=action_token))
        except ActionRefused as refusal:
            results.append(ActionResult(f"Not done: {refusal}"))  # opens with a word: admin capitalises
    return results, orders[cap:]
