"""What each manager action would do to an order, read for its confirmation page.

Plans only read: each says what the action will do (the steps it runs, the money and the
stock it moves) or, in `refusal`, why it cannot be done now. The actions in
`backoffice.actions` read the same plan again under the order's lock before they write.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from inventory.models import StockMovement
from inventory.services import is_stock_deducted, shortages
from orders import history, selectors
from orders.flow import FLOW, next_step
from orders.models import FAILURE_ENDS, EventKind, Notification, Order, OrderEvent
from orders.models import OrderState as S
from orders.steps import describe_shortages, retired_lines
from orders.transitions import stock_lines
from payments.models import Payment
from payments.refunds import refundable_amount
from payments.services import is_money_held
from receipts.models import Receipt

# The happy path's steps in order: what a redrive runs again from VALIDATED.
HAPPY_PATH = [step.name for state in (S.PENDING, S.VALIDATED, S.PAID, S.CONFIRMED) for step in FLOW[state]]


def format_money(amount: Decimal, currency: str) -> str:
    """An amount as the back office writes it: "12.50 USD"."""
    return f"{amount} {currency}"


@dataclass(frozen=True)
class Plan:
    """What an action's confirmation page says it will do, or why it cannot be done (`refusal`)."""

    does: str = ""
    money: str = ""
    stock: str = ""
    refusal: str = ""


# --- redrive -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepPlan:
    step: str
    runs: bool
    why: str


@dataclass(frozen=True)
class RedrivePlan(Plan):
    """What a redrive of this order would do: the failure it starts from and each step's fate."""

    order: Order | None = None
    failed_step: str = ""
    failed_in: str = ""
    failed_at: object = None
    steps: list[StepPlan] = field(default_factory=list)

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
        return RedrivePlan(
            order=order, refusal=f"{order.reference} is {order.state}: only a FAILED order can be redriven."
        )
    failed = _failure_event(order)
    if failed is None or failed.from_state not in (S.PENDING, S.VALIDATED, S.PAID):
        return RedrivePlan(
            order=order, refusal=f"{order.reference}: its history records no failed step to redrive from."
        )
    base: dict[str, Any] = {"failed_step": failed.step, "failed_in": failed.from_state, "failed_at": failed.created_at}
    limit = timezone.now() - timedelta(days=settings.ORDER_REDRIVE_DAYS)
    if failed.created_at < limit:
        when = timezone.localtime(failed.created_at).strftime("%Y-%m-%d")
        return RedrivePlan(
            order=order,
            **base,
            refusal=f"{order.reference} failed on {when}, more than {settings.ORDER_REDRIVE_DAYS} days ago: "
            "too late to redrive (ORDER_REDRIVE_DAYS).",
        )
    if not _compensation_settled(order, failed):
        return RedrivePlan(
            order=order,
            **base,
            refusal=f"{order.reference}: its compensation has not settled yet (the payment may still hold money). "
            "Wait for it, or retry its stuck step.",
        )
    lines = list(order.lines.select_related("product"))
    short = [s for s in shortages(stock_lines(order, lines)) if s.available < s.requested] + retired_lines(lines)
    if short:
        return RedrivePlan(
            order=order, **base, refusal=f"{order.reference} cannot be redriven: {describe_shortages(lines, short)}"
        )
    return RedrivePlan(
        order=order,
        **base,
        steps=_redrive_steps(failed),
        money=_redrive_money(order),
        stock=_redrive_stock(lines),
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
        f"A new authorisation of {format_money(order.total, order.currency)} is asked on {order.payment_method}, "
        f"captured once the stock is deducted.{before}"
    )


def _redrive_stock(lines) -> str:
    return "Reserves " + ", ".join(f"{line.quantity} x {line.sku}" for line in lines) + " again."


# --- retry a stuck step --------------------------------------------------------------------


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


def plan_retry(order: Order) -> Plan:
    """Which stuck step a retry would run now, or why there is none."""
    step = stuck_step(order)
    if not step:
        return Plan(refusal=f"{order.reference} ({order.state}) has no stuck step to retry.")
    return Plan(does=f"Runs {step} again now, on the task queue.")


# --- resend the confirmation, regenerate the receipt ---------------------------------------


def refusal_to_resend_confirmation(order: Order) -> str:
    """Why the confirmation cannot be sent again ("" when it can): it must have gone once, or
    may have (the mail server never confirmed it)."""
    sent = Notification.objects.filter(
        order=order,
        kind=Notification.Kind.CONFIRMATION,
        status__in=[Notification.Status.SENT, Notification.Status.UNCERTAIN],
    ).exists()
    return "" if sent else f"{order.reference} has no confirmation sent yet: retry its stuck step instead."


def plan_resend(order: Order) -> Plan:
    """What resending the confirmation does: one more email, no money."""
    return Plan(
        does=f"Sends {order.email} a new email: a copy of the confirmation, marked as sent again.",
        money="No money moves.",
        refusal=refusal_to_resend_confirmation(order),
    )


def refusal_to_regenerate_receipt(order: Order) -> str:
    """Why the receipt cannot be regenerated ("" when it can): a sale without a stored receipt."""
    if order.state not in (S.CONFIRMED, S.COMPLETED):
        return f"{order.reference} is {order.state}: only a sale has a receipt."
    receipt = Receipt.objects.filter(order=order, stored_at__isnull=False).first()
    if receipt:
        return f"{order.reference} has its receipt {receipt.number} stored; a stored receipt is never replaced."
    return ""


def plan_regenerate(order: Order) -> Plan:
    """What regenerating the receipt does, or why the order has no receipt to regenerate."""
    return Plan(
        does="Renders and stores the receipt PDF; a stored receipt is never replaced.",
        refusal=refusal_to_regenerate_receipt(order),
    )


# --- cancel and refund ---------------------------------------------------------------------


def plan_cancel(order: Order) -> Plan:
    """What cancelling this order would do to its money and stock."""
    if order.is_final:
        return Plan(refusal=f"{order.reference} is {order.state} and cannot be cancelled.")
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
        money = f"Voids the hold of {format_money(payment.amount, payment.currency)}: the shopper is not charged."
    else:
        left = payment.amount - payment.amount_refunded
        money = f"Refunds {format_money(left, payment.currency)} captured ({payment.status})."
    return Plan(money=money + " The shopper is emailed that the order was cancelled.", stock=stock)


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


def plan_refund(order: Order) -> Plan:
    """What may be refunded of this order: the money left, and the units that may go back to stock."""
    payment = Payment.objects.filter(order=order).first()
    if payment is None or payment.status not in (Payment.Status.CAPTURED, Payment.Status.PARTIALLY_REFUNDED):
        status = payment.status if payment else "no payment"
        return Plan(refusal=f"{order.reference} has no captured payment to refund ({status}).")
    left = refundable_amount(payment)
    if left <= 0:
        return Plan(refusal=f"{order.reference}: nothing is left to refund.")
    returnable = returnable_units(order)
    units = ", ".join(f"{line.sku}: {returnable.get(line.product_id, 0)}" for line in order.lines.all())
    return Plan(
        money=f"Up to {format_money(left, payment.currency)} can be refunded to the shopper's card "
        f"({format_money(payment.amount_refunded, payment.currency)} refunded so far). "
        "The shopper is emailed once it is done.",
        stock=f"Units that may go back to stock (a return in the ledger): {units}. "
        "Leave them at 0 to keep the stock as it is.",
    )


# --- mark handled --------------------------------------------------------------------------


def attention_reason(order: Order) -> str:
    """What makes the order need a manager now, in a few words ("" when nothing does): the
    same rule as the attention list and its home tile (`selectors.needs_attention_q`)."""
    if order.needs_attention:
        return "flagged"
    if Order.objects.filter(pk=order.pk).filter(selectors.needs_attention_q()).exists():
        return "failed, redrivable"
    return ""


def latest_problem(order: Order) -> OrderEvent | None:
    """The last thing that went wrong with the order for good (a flag, a step that gave up, its failure)."""
    return order.events.filter(outcome=OrderEvent.Outcome.FAILED).order_by("-id").first()


def plan_mark_handled(order: Order) -> Plan:
    """What marking the order handled does: off the attention list, nothing else changes."""
    was = attention_reason(order)
    if not was:
        return Plan(refusal=f"{order.reference} does not need attention: there is nothing to mark handled.")
    problem = latest_problem(order)
    found = f"Last problem: {problem.summary} " if problem else ""
    stays = " It stays FAILED and may still be redriven." if order.state == S.FAILED else ""
    return Plan(
        does=f"{found}Takes the order ({was}) off the attention list and its home tile, with your note in its "
        f"history.{stays} A new problem (a new dispute, a step failing again) puts it back.",
        money="No money moves.",
        stock="No stock moves.",
    )
