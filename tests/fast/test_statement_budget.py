"""The database statements an order costs, as BENCHMARKS.md quotes them: a budget that a
change may lower but not silently raise (counts, not timings)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders import pipeline
from orders.models import Order
from tests.support.statements import ACCEPT_BUDGET, PIPELINE_BUDGET, data_statements

# Which event types have a webhook endpoint is read once before counting (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("subscriptions_read_once")


def test_accepting_a_single_line_order_stays_within_its_statement_budget(shopper, make_product, held_pipeline):
    make_product("MUG-001", on_hand=5)

    with CaptureQueriesContext(connection) as accepted:
        response = shopper.places({"MUG-001": 1})

    assert response.status_code == 202, response.content
    assert Order.objects.get(reference=response.json()["reference"]).state == "VALIDATED"
    statements = data_statements(accepted.captured_queries)
    assert len(statements) <= ACCEPT_BUDGET[connection.vendor], "\n".join(statements)


def test_the_pipeline_of_one_order_stays_within_its_statement_budget(shopper, make_product, held_pipeline):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1})
    held_pipeline.lose_queued()

    with CaptureQueriesContext(connection) as piped:
        pipeline.advance_order(order.pk)

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    statements = data_statements(piped.captured_queries)
    assert len(statements) <= PIPELINE_BUDGET[connection.vendor], "\n".join(statements)


def test_the_stock_update_is_the_last_statement_of_the_accepting_transaction(shopper, make_product, held_pipeline):
    """A hot product's row is locked from its update to the commit only, so buyers of one
    product do not queue behind each other's order writes (issue 23)."""
    make_product("MUG-001", on_hand=5)

    with CaptureQueriesContext(connection) as accepted:
        response = shopper.places({"MUG-001": 1})

    assert response.status_code == 202, response.content
    statements = data_statements(accepted.captured_queries)
    assert statements[-1].startswith('UPDATE "inventory_stock"'), "\n".join(statements)


def test_an_accepted_order_is_written_once_already_validated_with_its_history(shopper, make_product, held_pipeline):
    """No second version of a new order's row (and of each of its index entries): the order
    goes in VALIDATED, its move from PENDING in its history as before."""
    make_product("MUG-001", on_hand=5)

    with CaptureQueriesContext(connection) as accepted:
        response = shopper.places({"MUG-001": 1})

    assert response.status_code == 202, response.content
    order = Order.objects.get(reference=response.json()["reference"])
    assert order.state == "VALIDATED"
    assert [(e.from_state, e.to_state) for e in order.events.all()] == [("PENDING", "VALIDATED")]
    statements = data_statements(accepted.captured_queries)
    assert not [s for s in statements if 'UPDATE "orders_order"' in s], "\n".join(statements)
