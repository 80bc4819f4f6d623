"""A stock row is locked from its update to its transaction's commit, and no longer: buyers
of one hot product queue for the update and the commit only, never for an order's other
writes (issue 23). Both transactions that change a sold product's row are held to it: the
accepting request's reservation and the pipeline's deduction."""

from contextlib import contextmanager

import pytest
from django.db import connection

from orders.models import Order

COMMIT = "COMMIT"


@contextmanager
def statements_and_commits():
    """Every statement this connection runs, in order, with a COMMIT mark where a transaction commits."""
    seen: list[str] = []

    def record(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    commit = connection.commit

    def commit_and_mark():
        commit()
        seen.append(COMMIT)

    connection.commit = commit_and_mark
    try:
        with connection.execute_wrapper(record):
            yield seen
    finally:
        del connection.commit  # the class's own method again


def after_each_stock_update(seen: list[str]) -> list[str]:
    """What follows each update of a stock row: the next statement, or the commit."""
    return [seen[n + 1] if n + 1 < len(seen) else "(end)" for n, sql in enumerate(seen) if is_stock_update(sql)]


def is_stock_update(sql: str) -> bool:
    return sql.startswith('UPDATE "inventory_stock"')


@pytest.fixture(autouse=True)
def _subscriptions_read(transactional_db):
    """Which event types have a webhook endpoint is read once per period, not per order: read it
    first, so that its read does not land between a stock update and its commit by chance."""
    from webhooks.outbox import OUTBOX

    OUTBOX.subscriptions.forget()
    OUTBOX.subscriptions.endpoints_for("order.placed")
    OUTBOX.subscriptions.read_at = float("inf")
    yield
    OUTBOX.subscriptions.forget()


def test_accepting_commits_right_after_taking_the_stock(shopper, make_product, held_pipeline):
    make_product("MUG-001", on_hand=5)
    make_product("MUG-002", on_hand=5)

    with statements_and_commits() as seen:
        response = shopper.places({"MUG-001": 1, "MUG-002": 2})

    assert response.status_code == 202, response.content
    updates = [sql for sql in seen if is_stock_update(sql)]
    assert len(updates) == 2, "\n".join(seen)
    # The second line's update follows the first; the commit follows the last.
    assert after_each_stock_update(seen) == [updates[1], COMMIT], "\n".join(seen)


def test_deducting_commits_right_after_the_stock_update(shopper, make_product, held_pipeline):
    make_product("MUG-001", on_hand=5)
    order = held_pipeline.run_by_hand(shopper.buys({"MUG-001": 2}), "process_payment")
    assert order.state == "PAID"

    with statements_and_commits() as seen:
        held_pipeline.run_by_hand(order, "update_inventory")

    assert Order.objects.get(pk=order.pk).state == "CONFIRMED"
    assert after_each_stock_update(seen) == [COMMIT], "\n".join(seen)
