"""The accepting request's and the pipeline's statements keep their cheap plans whatever the
planner's statistics last saw: a new shop's empty tables, or a moment with no order unpaid.
PostgreSQL's autovacuum refreshes them as the tables change, but a database may run without
it, or behind it; a plan that read a whole index there cost more with every order (the
bench's soak, BENCHMARKS.md)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from framework.prepared_statements import statement_cursor
from orders import history
from orders.models import Order
from orders.reservations import _HELD_BY_EMAIL_OR_ADDRESS
from orders.transitions import set_state_from
from tests.support.bulk_orders import add_orders

# Each test analyses the tables itself: ANALYZE writes a table's size in place, outside the
# test's transaction, so what an earlier test left must not decide a plan here.
pytestmark = pytest.mark.requires_postgres


def analyse_with(make_product, *, completed: int):
    """The orders tables analysed holding `completed` completed orders (none unpaid), then
    2,000 unpaid orders from 997 clients added after: the product they are of."""
    product = make_product("MUG-001", on_hand=100_000)
    add_orders(product, completed, clients=997, state="COMPLETED")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_order, orders_orderline")
    add_orders(product, 2000, clients=997)
    return product


# Empty: a new shop's first hour. Every order paid: a quiet moment, then a sale.
STATISTICS = pytest.mark.parametrize("completed", [0, 3000], ids=["analysed empty", "analysed with every order paid"])


def explain(sql: str, params=None) -> str:
    """The plan of a statement sent as the shop sends it: prepared, its values apart."""
    with statement_cursor("default") as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(line for (line,) in cursor.fetchall())


@STATISTICS
def test_the_units_held_read_takes_each_clients_own_index(make_product, completed):
    analyse_with(make_product, completed=completed)

    plan = explain(*_HELD_BY_EMAIL_OR_ADDRESS.sql_with_params(email="shopper5@example.com", address="10.0.0.5"))

    # Each half through its own index, not another index of unpaid orders (or the one by
    # state) read whole and filtered.
    assert "Index Scan using order_unpaid_by_address" in plan, plan
    assert "Index Scan using order_unpaid_by_email" in plan, plan
    assert "Filter: (upper((email)" not in plan and "Filter: (placed_from" not in plan, plan


@STATISTICS
@pytest.mark.parametrize("expected, new_state", [("VALIDATED", "PAID"), ("CONFIRMED", "COMPLETED")])
def test_a_state_change_finds_its_order_by_key_alone(make_product, completed, expected, new_state):
    analyse_with(make_product, completed=completed)
    order = Order.objects.filter(state="VALIDATED").order_by("?").first()
    Order.objects.filter(pk=order.pk).update(state=expected)
    order.refresh_from_db()

    with CaptureQueriesContext(connection) as sent:
        assert set_state_from(order, expected, new_state, history.StepRun(step="capture_payment", attempt=1))
    [update] = [q["sql"] for q in sent.captured_queries if "UPDATE" in q["sql"]]
    plan = explain(update)

    assert "Index Scan using orders_order_pkey" in plan, plan
    assert "order_unpaid" not in plan and "order_state_updated" not in plan, plan


def test_the_orders_table_is_vacuumed_and_analysed_after_a_small_share_of_it_changes(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'orders_order'")
        (options,) = cursor.fetchone()

    assert sorted(options) == ["autovacuum_analyze_scale_factor=0.005", "autovacuum_vacuum_scale_factor=0.01"]
