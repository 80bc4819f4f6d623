"""Statements written once per process, prepared on PostgreSQL (framework.prepared_statements):
the same rows as before, parsed once per connection, planned for the table as it is now,
their text still logged with its values, and a rollback survived."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from framework.compiled_query import CompiledQuery, Mark
from inventory.models import Product
from orders.reservations import _HELD_BY_EMAIL_OR_ADDRESS, _held_units
from tests.support.bulk_orders import add_orders
from tests.support.ordering import place, placed

pytestmark = pytest.mark.requires_postgres


def _prepared() -> dict[str, str]:
    """This connection's prepared statements: name -> SQL."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, statement FROM pg_prepared_statements")
        return dict(cursor.fetchall())


def _held_units_prepared() -> list[str]:
    """The names this connection prepared the units-held read under."""
    head = 'SELECT "orders_orderline"."product_id"'
    return [name for name, sql in _prepared().items() if sql.startswith(head)]


def test_a_compiled_query_is_prepared_on_its_second_run_and_reads_the_orms_rows(api, make_product, held_pipeline):
    make_product("MUG-001", on_hand=100)
    placed(place(api, {"MUG-001": 2}, email="ann@example.com"))
    connection.close()  # a connection of its own, none of its statements prepared yet

    first = _HELD_BY_EMAIL_OR_ADDRESS.rows(email="ANN@example.com", address="10.9.9.9")
    assert _held_units_prepared() == []
    second = _HELD_BY_EMAIL_OR_ADDRESS.rows(email="ann@EXAMPLE.com", address="10.9.9.9")

    [name] = _held_units_prepared()
    assert "$2" in _prepared()[name]  # the values sent apart from the SQL
    assert first == second == list(_held_units("ann@example.com", "10.9.9.9"))
    assert [units for _, units in second] == [2]


def test_a_prepared_query_is_planned_for_its_table_as_it_grew(make_product):
    product = make_product("MUG-001", on_hand=100)
    connection.close()
    with connection.cursor() as cursor:
        # Statistics of the empty tables, a new shop's (and whatever an earlier test's ANALYZE
        # left, which it writes outside its transaction, replaced).
        cursor.execute("ANALYZE orders_order, orders_orderline")
    for _ in range(7):  # past the five executions after which PostgreSQL may keep a generic plan
        _HELD_BY_EMAIL_OR_ADDRESS.rows(email="ann@example.com", address="10.9.9.9")
    [name] = _held_units_prepared()
    # A sale's worth of unpaid orders from other clients, with no ANALYZE since.
    add_orders(product, 20000, clients=20000)
    with connection.cursor() as cursor:
        _sql, params = _HELD_BY_EMAIL_OR_ADDRESS.sql_with_params(email="ann@example.com", address="10.9.9.9")
        cursor.execute(f"EXPLAIN EXECUTE {name}({', '.join(['%s'] * len(params))})", params)
        plan = "\n".join(line for (line,) in cursor.fetchall())

    # Planned for the orders there now, through an index; which index the planner takes on
    # statistics of empty tables is tests/fast/test_plans_on_stale_statistics.py's concern.
    assert "Seq Scan on orders_order" not in plan, plan
    assert "Index" in plan, plan


def test_a_prepared_statement_is_logged_with_its_values_as_any_other(db):
    query = CompiledQuery(lambda sku: Product.objects.filter(sku=sku).values_list("pk"), sku=Mark("\x1esku\x1e"))
    with CaptureQueriesContext(connection) as sent:
        for _ in range(3):
            assert query.rows(sku="MUG-001") == []
    assert [captured["sql"].count("'MUG-001'") for captured in sent.captured_queries] == [1, 1, 1]


def test_a_rollback_drops_the_prepared_statements_and_the_next_runs_read_right(transactional_db, make_product):
    product = make_product("MUG-001", on_hand=4)
    query = CompiledQuery(lambda sku: Product.objects.filter(sku=sku).values_list("pk"), sku=Mark("\x1esku\x1e"))
    for _ in range(2):
        assert query.rows(sku="MUG-001") == [(product.pk,)]
    assert _prepared()

    with pytest.raises(RuntimeError), transaction.atomic():
        assert query.rows(sku="MUG-001") == [(product.pk,)]
        raise RuntimeError("the order is refused")

    for _ in range(3):
        assert query.rows(sku="MUG-001") == [(product.pk,)]
        assert query.rows(sku="CAP-001") == []
