"""The flow table (`orders.flow`) agrees with the state machine (`orders.transitions`)."""

import pytest

from orders.flow import END_JOBS, FLOW, STEPS, WhenExhausted
from orders.models import FINAL_STATES, EventKind, OrderEvent, OrderState
from orders.transitions import ON_ENTERING, REDRIVE_TO, TRANSITIONS

# The labels already written into orders' histories: renaming one would orphan old rows.
PERSISTED_LABELS = {
    "validate_order",
    "process_payment",
    "update_inventory",
    "generate_receipt",
    "send_notification",
    "send_failure_notification",
    "refund_or_void",
    "publish_order_state",
}


def test_every_state_that_is_not_an_end_has_a_step_and_every_end_has_none():
    assert set(FLOW) == set(OrderState) - FINAL_STATES
    assert set(ON_ENTERING) == FINAL_STATES


def test_every_step_moves_an_order_only_where_the_state_machine_allows():
    for state, steps in FLOW.items():
        for step in steps:
            assert step.moves_to <= TRANSITIONS[state], (state, step.name)


def test_the_steps_of_a_state_with_failure_and_cancellation_make_up_all_its_moves():
    for state, steps in FLOW.items():
        moves = {OrderState.CANCELLED}.union(*(step.moves_to for step in steps))
        if any(step.when_exhausted is WhenExhausted.FAIL_ORDER for step in steps):
            moves.add(OrderState.FAILED)
        assert moves == TRANSITIONS[state], state


def test_the_only_way_out_of_an_end_is_a_managers_redrive_of_a_failed_order_back_to_validated():
    ways_out = {state: moves for state, moves in TRANSITIONS.items() if state in FINAL_STATES and moves}
    assert ways_out == {OrderState.FAILED: frozenset({REDRIVE_TO})}
    assert REDRIVE_TO == OrderState.VALIDATED  # the stock is reserved again and the payment asked afresh
    assert not any(step.moves_to & {OrderState.FAILED} for steps in FLOW.values() for step in steps)


def test_the_end_jobs_never_move_an_order():
    assert all(job.moves_to == frozenset() for job in END_JOBS)


def test_step_labels_are_the_ones_orders_histories_already_carry():
    assert set(STEPS) == PERSISTED_LABELS


@pytest.mark.parametrize(
    "payment_method, on_hand",
    [("pm_card_visa", 5), ("pm_card_chargeDeclined", 5), ("pm_card_visa", 0), ("pm_sim_capture_unavailable", 5)],
)
def test_every_move_an_order_makes_is_one_its_step_declares(shopper, make_product, payment_method, on_hand):
    make_product("MUG-001", on_hand=on_hand)
    order = shopper.buys({"MUG-001": 1}, pay_with=payment_method)

    moves = OrderEvent.objects.filter(order=order, kind=EventKind.STATE_CHANGED).values_list("step", "to_state")
    assert moves
    for step, to_state in moves:
        assert to_state in STEPS[step].moves_to | {OrderState.FAILED}, (step, to_state)
