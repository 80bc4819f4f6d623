"""A model's rows written with SQL built once per process (framework.compiled_writes): the
rows the ORM's own save() would write, instances left as save() leaves them, and models
with a save() of their own or save signals refused."""

from datetime import datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from framework.compiled_writes import ModelWrites, writes_for
from inventory.models import Product
from orders.history import StepRun
from orders.models import EventKind, Order, OrderEvent, OrderLine, OrderState


def _order(**fields) -> Order:
    return Order(
        email="ann@example.com",
        currency="EUR",
        subtotal=Decimal("10.00"),
        tax=Decimal("2.00"),
        total=Decimal("12.00"),
        payment_method="pm_card_visa",
        placed_from="10.1.2.3",
        request_hash="h" * 64,
        **fields,
    )


def test_an_inserted_order_and_its_lines_read_back_as_the_orm_would_have_written_them(make_product):
    product = make_product("MUG-001", on_hand=5)
    order = _order(idempotency_key="key-1")
    writes_for(Order).insert([order])

    assert order.pk and not order._state.adding and order._state.db == "default"
    assert order.reference and order.created_at and order.updated_at  # default and auto times set
    read = Order.objects.get(pk=order.pk)
    for field in Order._meta.concrete_fields:
        assert getattr(read, field.attname) == getattr(order, field.attname), field.name
    assert read.state == OrderState.PENDING and read.completed_at is None and read.placed_from == "10.1.2.3"

    lines = [
        OrderLine(order=order, product=product, sku="MUG-001", name="Mug", quantity=1, unit_price=Decimal("5.00")),
        OrderLine(
            order=order,
            product=make_product("CAP-001", on_hand=5),
            sku="CAP-001",
            name="Cap",
            quantity=2,
            unit_price=Decimal("2.50"),
        ),
    ]
    for line in lines:
        line.line_total = line.unit_price * line.quantity
    writes_for(OrderLine).insert(lines)
    assert [line.pk for line in lines] == list(order.lines.order_by("pk").values_list("pk", flat=True))
    assert [(line.sku, line.quantity, line.line_total) for line in order.lines.all()] == [
        ("MUG-001", 1, Decimal("5.00")),
        ("CAP-001", 2, Decimal("5.00")),
    ]


def test_an_insert_that_breaks_a_unique_constraint_raises_as_the_orm_would(transactional_db):
    writes_for(Order).insert([_order(idempotency_key="key-1")])
    with pytest.raises(IntegrityError), transaction.atomic():
        writes_for(Order).insert([_order(idempotency_key="key-1")])
    assert writes_for(Order).insert_if_absent(_order(idempotency_key="key-1")) is False
    assert writes_for(Order).insert_if_absent(_order(idempotency_key="key-2")) is True
    assert Order.objects.count() == 2


def test_an_update_writes_only_while_its_condition_holds_and_returns_the_row_converted(transactional_db):
    order = _order()
    writes_for(Order).insert([order])
    when = datetime(2026, 12, 6, 12, 0, tzinfo=order.created_at.tzinfo)

    assert writes_for(Order).update_returning(order.pk, {"state": "PAID"}, where={"state": "VALIDATED"}) is None
    assert writes_for(Order).update(order.pk, {"state": "VALIDATED", "updated_at": when}) == 1
    row = writes_for(Order).update_returning(
        order.pk, {"state": "PAID", "worked_until": None}, where={"state": "VALIDATED"}
    )

    assert row is not None and row["state"] == "PAID" and row["updated_at"] == when
    # Types as a query gives them on every database (SQLite keeps text and floats underneath).
    assert isinstance(row["updated_at"], datetime) and row["total"] == Decimal("12.00")
    assert isinstance(row["total"], Decimal) and row["needs_attention"] is False
    assert row == {f.attname: getattr(Order.objects.get(pk=order.pk), f.attname) for f in Order._meta.concrete_fields}
    assert writes_for(Order).update(order.pk + 1000, {"state": "PAID"}) == 0


def test_an_order_and_its_lines_inserted_together_are_one_statement_on_postgresql(transactional_db, make_product):
    lines = [
        OrderLine(product=make_product(sku, on_hand=5), sku=sku, name=sku, quantity=n, unit_price=Decimal("2.50"))
        for n, sku in enumerate(["MUG-001", "CAP-001"], start=1)
    ]
    for line in lines:
        line.line_total = line.unit_price * line.quantity
    order = _order(idempotency_key="key-1")

    with CaptureQueriesContext(connection) as sent:
        writes_for(Order).insert_with_children(order, lines, parent_field="order")

    assert len(sent.captured_queries) == (1 if connection.vendor == "postgresql" else 2)
    assert order.pk and not order._state.adding and all(line.order_id == order.pk for line in lines)
    assert [line.pk for line in lines] == list(order.lines.order_by("pk").values_list("pk", flat=True))
    assert [(line.sku, line.quantity, line.line_total) for line in Order.objects.get(pk=order.pk).lines.all()] == [
        ("MUG-001", 1, Decimal("2.50")),
        ("CAP-001", 2, Decimal("5.00")),
    ]
    # A replayed key fails the whole statement: no lines without their order.
    with pytest.raises(IntegrityError), transaction.atomic():
        writes_for(Order).insert_with_children(_order(idempotency_key="key-1"), [lines[0]], parent_field="order")
    assert OrderLine.objects.count() == 2


def test_rows_along_an_update_are_written_only_when_it_matched(transactional_db):
    order = _order()
    writes_for(Order).insert([order])
    run = StepRun(step="validate_order", attempt=1)
    refused = OrderEvent(order=order, kind=EventKind.STATE_CHANGED, step="pay", attempt=1, to_state="PAID")

    moved = writes_for(Order).update_returning(
        order.pk, {"state": "PAID"}, where={"state": "VALIDATED"}, along=[refused]
    )
    assert moved is None and refused.pk is None and not OrderEvent.objects.exists()

    event = OrderEvent(
        order=order, kind=EventKind.STATE_CHANGED, step=run.step, attempt=1, from_state="PENDING", to_state="VALIDATED"
    )
    with CaptureQueriesContext(connection) as sent:
        written = writes_for(Order).update(order.pk, {"state": "VALIDATED"}, where={"state": "PENDING"}, along=[event])
    assert written == 1 and len(sent.captured_queries) == (1 if connection.vendor == "postgresql" else 2)
    assert event.pk and not event._state.adding
    assert list(OrderEvent.objects.values_list("pk", "to_state")) == [(event.pk, "VALIDATED")]
    paid = OrderEvent(order=order, kind=EventKind.STATE_CHANGED, step="pay", attempt=1, to_state="PAID")
    row = writes_for(Order).update_returning(order.pk, {"state": "PAID"}, where={"state": "VALIDATED"}, along=[paid])
    assert row is not None and row["state"] == "PAID" and row["total"] == Decimal("12.00") and paid.pk
    assert Order.objects.get(pk=order.pk).events.count() == 2


def test_a_model_with_save_signals_or_its_own_save_is_refused(db):
    # django-auditlog connects post_save for the models it tracks (framework/activity.py).
    with pytest.raises(TypeError, match="save"):
        ModelWrites(User)
    with pytest.raises(TypeError, match="save"):
        ModelWrites(Product)
