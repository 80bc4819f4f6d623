"""Queries built by the ORM once per process (framework.compiled_query): the same rows as the
ORM's own query for every value, compiled once, and refused where a lookup rewrites its value."""

import pytest
from django.db.models import Count

from framework.compiled_query import CompiledQuery, Mark, ip_address_mark
from orders.models import Order
from orders.reservations import _HELD_BY_EMAIL_OR_ADDRESS, _held_units
from tests.support.ordering import place, placed


def test_a_clients_held_units_read_by_the_compiled_query_match_the_orms_own_query(api, make_product, held_pipeline):
    make_product("MUG-001", on_hand=100)
    make_product("CAP-001", on_hand=100)
    placed(place(api, {"MUG-001": 2}, email="Ann@Example.com"))
    placed(place(api, {"CAP-001": 3}, email="bob@example.com"))

    for email, address in [("ann@example.com", "10.9.9.9"), ("BOB@example.com", "127.0.0.1"), ("x@y.z", "10.1.1.1")]:
        compiled = sorted(_HELD_BY_EMAIL_OR_ADDRESS.rows(email=email, address=address))
        assert compiled == sorted(_held_units(email, address)), (email, address)
    # Any case of the email; the address of both orders (the test client's).
    assert _HELD_BY_EMAIL_OR_ADDRESS.rows(email="ANN@EXAMPLE.COM", address="10.9.9.9") == [
        (Order.objects.get(email="Ann@Example.com").lines.get().product_id, 2)
    ]
    assert sum(units for _, units in _HELD_BY_EMAIL_OR_ADDRESS.rows(email="x@y.z", address="127.0.0.1")) == 5


def test_a_compiled_query_is_built_once_and_run_with_each_value(db, monkeypatch):
    built = []

    def by_state(state):
        built.append(state)
        return Order.objects.filter(state=state).values("state").annotate(n=Count("pk")).values_list("state", "n")

    query = CompiledQuery(by_state, state=Mark("\x1estate\x1e"))
    assert query.rows(state="VALIDATED") == []
    assert query.rows(state="COMPLETED") == []
    assert len(built) == 1


def test_a_lookup_that_rewrites_its_value_is_refused_when_compiled(db):
    query = CompiledQuery(lambda email: Order.objects.filter(email__contains=email), email=Mark("\x1eemail\x1e"))
    with pytest.raises(ValueError, match="rewriting lookup"):
        query.rows(email="ann")


def test_an_ip_address_value_goes_through_its_fields_conversion(db):
    query = CompiledQuery(
        lambda address: Order.objects.filter(placed_from=address).values_list("pk"), address=ip_address_mark()
    )
    assert query.rows(address="2001:db8::1") == []


def test_a_model_query_reads_as_the_orms_own_instances_with_their_annotations(db, make_product):
    from inventory.models import Product
    from orders.services import _products_for, _products_with_skus

    make_product("MUG-001", on_hand=7)
    make_product("CAP-001", on_hand=3)
    compiled = _products_for(["CAP-001", "MUG-001", "NOPE-1"])
    orms = {p.sku: p for p in _products_with_skus(a="CAP-001", b="MUG-001", c="NOPE-1")}
    assert set(compiled) == set(orms) == {"CAP-001", "MUG-001"}
    for sku, product in compiled.items():
        assert isinstance(product, Product) and not product._state.adding
        fields = [f.attname for f in Product._meta.concrete_fields]
        # Each value of the type the ORM gives it (a Decimal price, a bool, an aware datetime).
        assert [(getattr(product, f), type(getattr(product, f))) for f in fields] == [
            (getattr(orms[sku], f), type(getattr(orms[sku], f))) for f in fields
        ]
        assert product.units_for_sale == orms[sku].units_for_sale
    assert compiled["MUG-001"].units_for_sale == 7


def test_a_query_of_values_has_no_instances(db):
    query = CompiledQuery(lambda state: Order.objects.filter(state=state).values_list("pk"), state=Mark("\x1es\x1e"))
    with pytest.raises(ValueError, match="model instances"):
        query.instances(state="VALIDATED")


def test_a_compiled_update_takes_units_only_while_the_product_has_them(db, make_product):
    from inventory.models import Stock
    from inventory.services import StockLine, _take_units

    mug = make_product("MUG-001", on_hand=5)
    cap = make_product("CAP-001", on_hand=5)

    assert _take_units(StockLine(mug.pk, 3))
    assert not _take_units(StockLine(mug.pk, 3))  # 2 left for sale: nothing taken
    assert _take_units(StockLine(mug.pk, 2))
    assert _take_units(StockLine(cap.pk, 1))  # the same statement, another product's values

    stock = {row.product_id: (row.on_hand, row.reserved) for row in Stock.objects.all()}
    assert stock == {mug.pk: (5, 5), cap.pk: (5, 1)}


def test_a_compiled_update_is_built_once(db, make_product):
    from django.db.models import F

    from framework.compiled_query import CompiledUpdate
    from inventory.models import Stock

    mug = make_product("MUG-001", on_hand=5)
    built = []

    def release(product_id, quantity):
        built.append(product_id)
        return Stock.objects.filter(product_id=product_id), {"on_hand": F("on_hand") + quantity}

    update = CompiledUpdate(release, product_id=Mark(-1_234_567), quantity=Mark(-7_654_321))
    assert update.run(product_id=mug.pk, quantity=2) == 1
    assert update.run(product_id=mug.pk + 1000, quantity=2) == 0
    assert len(built) == 1
    assert Stock.objects.get(product=mug).on_hand == 7
