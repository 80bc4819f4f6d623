"""The pipeline's steps, in the order an order goes through them, then the jobs of its ends.

Each step is given the order as read just before its attempt, locks the row, checks the
state, does its work, and records the outcome through `orders.history`. It returns
`After.NEXT_STEP` when it moved the order on and the next step is due, `After.STOP` when the
order waits, ended or belongs to another worker. A step that returns `After.NEXT_STEP` took
its last lock with `relock(order)` or `set_state_from` (whose RETURNING brings the instance
up to date), or changed nothing of the order's row, so the instance it was given is the
order as it committed it: the runner hands it to the next step without
reading the row again, unless the next step's lease finds the state moved on meanwhile. No lock
is held across a provider call.
`orders.flow` says which step runs in which state, with its retry policy.
"""

from enum import Enum

from django.conf import settings
from django.db import transaction

from framework.compiled_writes import writes_for
from framework.queue import Task, enqueue_on_commit
from inventory.services import Shortage, StockMove, is_stock_deducted, move_stock, reserve_stock, shortages, take_stock
from orders import history
from orders.history import StepRun
from orders.models import FAILURE_ENDS, Notification, Order, OrderLine, lock_order, lock_state, relock
from orders.models import OrderState as S
from orders.notifications import (
    NotificationCapped,
    NotificationInProgress,
    NotificationUncertain,
    flag_uncertain_email,
    send_order_email,
)
from orders.sns import publish_final_state
from orders.transitions import end_order, set_state, set_state_from, stock_lines
from payments.gateways.base import IntentStatus
from payments.models import Payment
from payments.services import (
    authentication_expired,
    authorize_payment,
    awaiting_authentication,
    capture_payment,
    compensate_payment,
    payment_of,
    record_payment,
)
from receipts.services import PaidWith, issue_receipt

# Answers of an authorisation that leave money held (or about to be) on the shopper's card.
MONEY_HOLDING = frozenset({IntentStatus.AUTHORIZED, IntentStatus.CAPTURED, IntentStatus.REQUIRES_ACTION})
# Answers of an authorisation that settle the payment step one way or the other.
SETTLED_ANSWERS = frozenset(
    {IntentStatus.AUTHORIZED, IntentStatus.CAPTURED, IntentStatus.DECLINED, IntentStatus.VOIDED}
)


class After(Enum):
    NEXT_STEP = "the order moved on: its next step is due"
    STOP = "the order waits, has ended, or another worker has it"


class StepFailed(Exception):
    """A step's permanent failure: no retry will help. `reason` may be shown to the shopper."""

    def __init__(self, code: str, reason: str):
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


def validate_order(order: Order, run: StepRun) -> After:
    """The step for an order still PENDING: `reserve_or_reject` under the order's lock.

    Orders placed through `place_order` are validated as they are accepted; this step
    re-drives one that was written PENDING and never validated.
    """
    with transaction.atomic():
        order = relock(order)
        if order.state != S.PENDING:
            return After.STOP
        return reserve_or_reject(order, list(order.lines.select_related("product")), run)


def reserve_or_reject(order: Order, lines: list[OrderLine], run: StepRun) -> After:
    """PENDING -> VALIDATED with every line reserved, or REJECTED naming all short lines.

    Runs in the caller's transaction, on an order it has locked or has just written; each
    line carries its product.
    """
    on_sale = [line for line in lines if line.product.active]
    if len(on_sale) == len(lines):
        short = reserve_stock(stock_lines(order, lines))
    else:
        # Nothing is reserved for an order with a product no longer for sale.
        short = [s for s in shortages(stock_lines(order, on_sale)) if s.available < s.requested]
        short += retired_lines(lines)
    if short:
        record_units_left(lines, short)
        end_order(order, S.REJECTED, run, code="out_of_stock", reason=describe_shortages(lines, short))
        return After.STOP
    set_state(order, S.VALIDATED, run)
    return After.NEXT_STEP


class StockGoneMeanwhile(Exception):
    """`validate_taking_stock_last` found a line short at its last statement: the caller rolls
    its transaction back and validates the order again with `write_and_reserve_or_reject`."""


def write_and_reserve_or_reject(order: Order, lines: list[OrderLine], run: StepRun) -> After:
    """`reserve_or_reject` for a new order, not yet written: written PENDING with its lines
    first, in the caller's transaction."""
    writes_for(Order).insert_with_children(order, lines, parent_field="order")
    return reserve_or_reject(order, lines, run)


def validate_taking_stock_last(order: Order, lines: list[OrderLine], run: StepRun) -> After:
    """`write_and_reserve_or_reject` with the stock taken by the transaction's last
    statements: the new order is written already VALIDATED, with its lines and the move's
    event (`set_state`), then each line's units are taken with one conditional update, so a
    hot product's row is locked only from that update to the commit that follows at once.

    When a line is short, raises `StockGoneMeanwhile` with the order's writes still undone:
    the caller rolls back (nothing of this attempt stays) and rejects or validates the order
    the ordinary way, which names every short line. An order with a product no longer for
    sale reserves nothing and goes the ordinary way at once.
    """
    if not all(line.product.active for line in lines):
        return write_and_reserve_or_reject(order, lines, run)
    set_state(order, S.VALIDATED, run, lines=lines)
    if not take_stock(stock_lines(order, lines)):
        raise StockGoneMeanwhile(order.reference)
    return After.NEXT_STEP


def retired_lines(lines: list[OrderLine]) -> list[Shortage]:
    """Lines of a product no longer for sale: nothing is reserved for an order with one."""
    return [Shortage(line.product_id, line.quantity, 0) for line in lines if not line.product.active]


def record_units_left(lines: list[OrderLine], short: list[Shortage]) -> None:
    """Keep on each short line the units that were left, so the shopper's page can name the line
    and offer what there is (the reason's words are for people, not for the page to parse)."""
    by_product = {s.product_id: s for s in short}
    marked = [line for line in lines if line.product_id in by_product]
    for line in marked:
        line.units_left = by_product[line.product_id].available
    OrderLine.objects.bulk_update(marked, ["units_left"])


def describe_shortages(lines: list[OrderLine], short: list[Shortage]) -> str:
    """The short lines in the words the shopper (or a manager) reads, in the order's line order."""
    by_product = {s.product_id: s for s in short}
    reason = "; ".join(
        f"{line.sku}: {s.requested} requested, {s.available} available"
        for line in lines
        if (s := by_product.get(line.product_id))
    )
    return f"Not enough stock: {reason}."


def process_payment(order: Order, run: StepRun) -> After:
    """VALIDATED -> PAID once the payment is authorised, or PAYMENT_FAILED on a decline."""
    if order.state != S.VALIDATED:
        return After.STOP
    result = authorize_payment(order)  # outside any lock: a network call
    if result.status in (IntentStatus.AUTHORIZED, IntentStatus.CAPTURED):
        with transaction.atomic():
            # The usual answer: the move takes the lock and checks the state in one statement.
            if set_state_from(order, S.VALIDATED, S.PAID, run):
                record_payment(order, result)
                return After.NEXT_STEP
    with transaction.atomic():
        order = relock(order)
        if order.state in FAILURE_ENDS and result.status in MONEY_HOLDING:
            # The order ended while the provider answered (its reservation released, a manager
            # cancelled): its compensation may have run before this hold existed; run it again.
            record_payment(order, result)
            enqueue_on_commit(Task.REFUND_OR_VOID, order.pk)
        if order.state != S.VALIDATED:
            return After.STOP
        # Read only where it matters (an answer still waiting), before the answer is written.
        was_waiting = result.status not in SETTLED_ANSWERS and awaiting_authentication(order)
        payment = record_payment(order, result)
        if result.status in (IntentStatus.AUTHORIZED, IntentStatus.CAPTURED):
            set_state(order, S.PAID, run)
            return After.NEXT_STEP
        if result.status in (IntentStatus.DECLINED, IntentStatus.VOIDED):
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
            history.step_waiting(order, run, f"payment {result.status}")
    return After.STOP


def deduct_stock_and_capture_payment(order: Order, run: StepRun) -> After:
    """PAID -> CONFIRMED: the reservation becomes a deduction, then the payment is captured.

    Its label in the history stays `update_inventory`, the original design's name.
    """
    with transaction.atomic():
        # The row's lock and its state only: nothing else of the row changes before its state
        # does below, and that update's RETURNING brings the instance up to date.
        if lock_state(order.pk) != S.PAID:
            return After.STOP
        if not is_stock_deducted(order.pk):
            move_stock(StockMove.DEDUCT, stock_lines(order), order_id=order.pk)
    result = capture_payment(order)  # after the deduction, outside the lock
    with transaction.atomic():
        if not set_state_from(order, S.PAID, S.CONFIRMED, run):
            return After.STOP
        record_payment(order, result)
    return After.NEXT_STEP


def generate_receipt(order: Order, run: StepRun) -> After:
    """Render and store the PDF receipt of a confirmed order (once)."""
    if order.state != S.CONFIRMED:
        return After.STOP
    payment = payment_of(order) or Payment()
    issue_receipt(order, PaidWith(payment.card_brand, payment.card_last4, payment.provider_reference))
    with transaction.atomic():
        # The row's lock and its state only: this step changed nothing else of the order, so
        # the runner's instance stays as it is (a manager may have cancelled meanwhile).
        if lock_state(order.pk) != S.CONFIRMED:
            return After.STOP
        history.step_succeeded(order, run)
    return After.NEXT_STEP


def send_confirmation(order: Order, run: StepRun) -> After:
    """Email the shopper their confirmation (at most once), then COMPLETED.

    A confirmation that may or may not have arrived completes the order too (the sale and
    its receipt stand), flagged for a manager, who may resend it; it is never sent again on
    its own.
    """
    if order.state != S.CONFIRMED:
        return After.STOP
    uncertain = None
    try:
        send_order_email(order, Notification.Kind.CONFIRMATION)
    except NotificationInProgress as busy:
        # Another worker is sending it and completes the order; if it died, its claim
        # goes stale and the order, nudged back here, is completed with its email uncertain.
        history.step_waiting(order, run, str(busy))
        return After.STOP
    except NotificationUncertain as not_known:
        uncertain = not_known
    with transaction.atomic():
        if uncertain is None:
            set_state_from(order, S.CONFIRMED, S.COMPLETED, run)
            return After.STOP
        order = lock_order(order.pk)
        if order.state == S.CONFIRMED:
            set_state(order, S.COMPLETED, run)
        # After completing, which settles the flags of the receipt and the email.
        flag_uncertain_email(order, uncertain, actor=run.actor, step=run.step)
    return After.STOP


# --- the jobs an end sets off (`transitions.ON_ENTERING`) ---------------------------------


def send_failure_notification(order: Order, run: StepRun) -> After:
    """Tell the shopper we could not process their order, or that the shop cancelled it (at most once)."""
    if order.state not in FAILURE_ENDS:
        return After.STOP
    kind = Notification.Kind.CANCELLATION if order.state == S.CANCELLED else Notification.Kind.FAILURE
    try:
        sent = send_order_email(order, kind)
    except (NotificationInProgress, NotificationCapped) as not_now:
        history.step_waiting(order, run, str(not_now))
        return After.STOP
    except NotificationUncertain as uncertain:
        with transaction.atomic():
            flag_uncertain_email(lock_order(order.pk), uncertain, actor=run.actor, step=run.step)
        return After.STOP
    if sent:
        history.step_succeeded(order, run, f"{kind.label} email sent.")
    else:
        history.step_waiting(order, run, f"The {kind.label.lower()} email was sent before.")
    return After.STOP


def publish_order_state(order: Order, run: StepRun) -> After:
    """Publish a final order state to the SNS topic (once in the normal path)."""
    if not order.is_final or not settings.NOTIFY_SNS_TOPIC_ARN:
        return After.STOP
    # A final state never changes, so one successful publish per order is the whole job.
    if history.has_succeeded(order, run.step):
        return After.STOP
    message_id = publish_final_state(order)
    history.step_succeeded(order, run, f"SNS message {message_id}", message_id=message_id)
    return After.STOP


def refund_or_void(order: Order, run: StepRun) -> After:
    """Compensation: leave a failed or cancelled order with no net charge."""
    if order.state not in FAILURE_ENDS - {S.REJECTED}:
        return After.STOP  # a stray message must never refund a sale that stands
    result = compensate_payment(order)
    with transaction.atomic():
        order = lock_order(order.pk)
        if result is not None:
            record_payment(order, result)
            history.step_succeeded(order, run, f"Payment {result.status}.", payment_status=str(result.status))
        else:
            history.step_succeeded(order, run, "No payment to compensate.")
    return After.STOP
