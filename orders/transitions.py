"""The order's state machine: where each state may move, and what entering an end sets off.

    PENDING -> VALIDATED -> PAID -> CONFIRMED -> COMPLETED
    failure ends: REJECTED, PAYMENT_FAILED, FAILED, CANCELLED
    a manager's redrive: FAILED -> VALIDATED

The pipeline never leaves an end. The one way out of one is a manager's redrive of a
FAILED order (`backoffice.actions.redrive_order`, docs/REDRIVE.md), and it leads back
to VALIDATED whichever step failed: entering FAILED gave the stock back and voided or
refunded the money (compensation), so the redrive reserves the stock again under the
order's lock (refusing, and staying FAILED, when it is gone) and the payment step asks for
a fresh authorisation under a new idempotency key. Steps whose effects survived FAILED
(the order written and priced) are not run again; the steps after VALIDATED run as for
any order, each idempotent. A redrive is allowed only once compensation has settled (no
money held), so an order never has two live holds: no charge without an order, no order
without a charge.

`set_state` is the only writer of an order's state. Entering an end queues that end's jobs
(`ON_ENTERING`) once the move commits: compensation, the shopper's failure email, the SNS
publish. `end_order` gives the stock back first, in the same transaction.
"""

import logging
from collections.abc import Sequence

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from framework.compiled_writes import writes_for
from framework.queue import Task, enqueue_on_commit
from inventory.services import StockLine, StockMove, is_stock_deducted, move_stock
from orders import history
from orders.models import FAILURE_ENDS, FINAL_STATES, Order, OrderEvent, OrderLine
from orders.models import OrderState as S

logger = logging.getLogger(__name__)

TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.VALIDATED, S.REJECTED, S.FAILED, S.CANCELLED}),
    S.VALIDATED: frozenset({S.PAID, S.PAYMENT_FAILED, S.FAILED, S.CANCELLED}),
    S.PAID: frozenset({S.CONFIRMED, S.FAILED, S.CANCELLED}),
    S.CONFIRMED: frozenset({S.COMPLETED, S.CANCELLED}),
    S.COMPLETED: frozenset(),
    S.REJECTED: frozenset(),
    S.PAYMENT_FAILED: frozenset(),
    S.FAILED: frozenset({S.VALIDATED}),  # a manager's redrive, never the pipeline
    S.CANCELLED: frozenset(),
}

# Where a redriven FAILED order goes back to (see the module's docstring).
REDRIVE_TO = S.VALIDATED

# What is queued once an order has entered an end (and its transaction committed). A
# rejected order never held money; a cancelled one (always a manager's decision) tells the
# shopper, with the failure email's step and its retries.
ON_ENTERING: dict[str, tuple[Task, ...]] = {
    S.COMPLETED: (),
    S.REJECTED: (Task.SEND_FAILURE_NOTIFICATION,),
    S.PAYMENT_FAILED: (Task.REFUND_OR_VOID, Task.SEND_FAILURE_NOTIFICATION),
    S.FAILED: (Task.REFUND_OR_VOID, Task.SEND_FAILURE_NOTIFICATION),
    S.CANCELLED: (Task.REFUND_OR_VOID, Task.SEND_FAILURE_NOTIFICATION),
}


class IllegalTransition(Exception):
    pass


def stock_lines(order: Order, lines: list[OrderLine] | None = None) -> list[StockLine]:
    """What the order takes from stock: a product and a quantity per line."""
    return [StockLine(line.product_id, line.quantity) for line in (order.lines.all() if lines is None else lines)]


def set_state(
    order: Order,
    new_state: str,
    run: history.StepRun,
    *,
    failure_code: str = "",
    failure_reason: str = "",
    lines: Sequence[OrderLine] = (),
) -> None:
    """Move a locked order to `new_state`, refusing any move the transition table forbids.

    An order not yet written (PENDING, being placed) is written with its first move: its row
    already in `new_state`, its `lines` and the move's event, in one statement, not an insert
    and an update of the row it just inserted (a second version of the row, and of each of its
    index entries, on every order placed)."""
    if new_state not in TRANSITIONS[order.state]:
        raise IllegalTransition(f"{order.reference}: {order.state} -> {new_state} is not allowed")
    from_state = order.state
    changes = {**_moved(from_state, new_state, failure_code, failure_reason), "updated_at": timezone.now()}
    event = history.state_change(
        order, run, from_state=from_state, to_state=new_state, failure_code=failure_code, failure_reason=failure_reason
    )
    for field, value in changes.items():
        setattr(order, field, value)
    if order._state.adding:
        writes_for(Order).insert_with_children(order, [*lines, event], parent_field="order")
    # The compiled update (framework/compiled_writes.py): what `save(update_fields=...)` writes,
    # the move's history event with it.
    elif not writes_for(Order).update(order.pk, changes, along=[event]):
        raise DatabaseError(f"{order.reference}: the order's row is gone")
    _entered(order, from_state, run, event)


def set_state_from(order: Order, expected: str, new_state: str, run: history.StepRun) -> bool:
    """`set_state` for an order the caller has not locked, expected in state `expected`: one
    `UPDATE ... WHERE state = expected RETURNING` the row locks it (until the transaction
    ends, as `lock_order` would), checks its state and writes the move, and brings `order`
    up to date with the row. False, with nothing written and `order` as it was, when the
    order is no longer in `expected`: the caller decides as it would have under the lock.

    The lock and the write a step's last transaction starts with, in one statement instead
    of a locking read, its model instance and a save.
    """
    if new_state not in TRANSITIONS[expected]:
        raise IllegalTransition(f"{order.reference}: {expected} -> {new_state} is not allowed")
    changes = {**_moved(expected, new_state, "", ""), "updated_at": timezone.now()}
    event = history.state_change(order, run, from_state=expected, to_state=new_state)
    moved = writes_for(Order).update_returning(order.pk, changes, where={"state": expected}, along=[event])
    if moved is None:
        return False
    for name, value in moved.items():
        setattr(order, name, value)
    _entered(order, expected, run, event)
    return True


def _moved(from_state: str, new_state: str, failure_code: str, failure_reason: str) -> dict[str, object]:
    """The columns a move from `from_state` to `new_state` writes, besides `updated_at`."""
    # The step that moved the order is done with it: its lease ends (orders.recovery).
    changes: dict[str, object] = {"state": new_state, "worked_until": None}
    if failure_code or failure_reason or from_state in FAILURE_ENDS:
        # A redriven order is no longer failed: the shopper's page stops giving the reason.
        changes.update(failure_code=failure_code, failure_reason=failure_reason)
    if new_state == S.COMPLETED:
        changes["completed_at"] = timezone.now()
    return changes


def _entered(order: Order, from_state: str, run: history.StepRun, event: OrderEvent) -> None:
    """What follows a move written to the order's row with its history `event`: its flag
    settled, its end's jobs queued for the commit, the event recorded."""
    new_state = order.state
    if new_state == S.COMPLETED and order.needs_attention:
        # Completing means the receipt and the email finally went: their flag is settled.
        history.clear_flag(order)
    if new_state in FINAL_STATES and settings.NOTIFY_SNS_TOPIC_ARN:
        enqueue_on_commit(Task.PUBLISH_ORDER_STATE, order.pk)
    for task in ON_ENTERING.get(new_state, ()):
        enqueue_on_commit(task, order.pk)
    history.state_changed(order, run, from_state=from_state, written=event)
    log = logger.error if new_state == S.FAILED else logger.info
    log("order %s %s -> %s (%s)", order.reference, from_state, new_state, run.step)


def end_order(order: Order, state: str, run: history.StepRun, *, code: str, reason: str) -> None:
    """Move a locked order to a failure end, giving back its stock; money follows on commit.

    The state changes first, in this transaction, so no other worker advances the order
    while its payment is being voided or refunded.
    """
    assert state in FAILURE_ENDS, state
    if is_stock_deducted(order.pk):
        move_stock(StockMove.RETURN, stock_lines(order), order_id=order.pk)
    elif order.state in (S.VALIDATED, S.PAID):
        move_stock(StockMove.RELEASE, stock_lines(order), order_id=order.pk)
    set_state(order, state, run, failure_code=code, failure_reason=reason)
