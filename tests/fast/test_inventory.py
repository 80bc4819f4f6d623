"""Stock services: every change a ledger line, never below zero or below what orders hold."""

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from inventory.models import Stock, StockMovement
from inventory.services import (
    StockAdjustmentError,
    StockLine,
    StockMove,
    adjust_stock,
    is_stock_deducted,
    move_stock,
    reserve_stock,
    set_stock_level,
)
from tests.support.invariants import stock_of

# Every scenario ends with the ledger summing to on hand and no stock below zero.
pytestmark = pytest.mark.usefixtures("stock_invariants_hold")


@pytest.fixture
def mug_with_three_reserved(make_product, shopper, held_pipeline):
    """A mug with 5 on hand, 3 of them held by an order waiting for its payment."""
    mug = make_product("MUG-001", on_hand=5)
    shopper.buys({"MUG-001": 3})
    held_pipeline.lose_queued()
    assert (stock_of("MUG-001").on_hand, stock_of("MUG-001").reserved) == (5, 3)
    return mug


def test_an_adjustment_changes_on_hand_by_its_delta_and_writes_a_ledger_line(make_product):
    mug = make_product("MUG-001", on_hand=5)
    clerk = get_user_model().objects.create_user("clerk")

    stock = adjust_stock(product=mug, delta=-2, user=clerk, note="two broken in transit")

    assert stock.on_hand == 3
    line = StockMovement.objects.filter(product=mug).first()
    assert (line.quantity, line.reason, line.user, line.note) == (-2, "adjustment", clerk, "two broken in transit")


def test_an_adjustment_below_the_reserved_units_is_refused_and_changes_nothing(mug_with_three_reserved):
    lines_before = StockMovement.objects.count()

    with pytest.raises(StockAdjustmentError, match="3 reserved"):
        adjust_stock(product=mug_with_three_reserved, delta=-3, note="recount")

    stock = stock_of("MUG-001")
    assert (stock.on_hand, stock.reserved) == (5, 3)
    assert StockMovement.objects.count() == lines_before


def test_an_adjustment_down_to_the_reserved_units_is_allowed(mug_with_three_reserved):
    stock = adjust_stock(product=mug_with_three_reserved, delta=-2, note="recount")

    assert (stock.on_hand, stock.reserved) == (3, 3)


def test_an_adjustment_below_zero_is_refused(make_product):
    mug = make_product("MUG-001", on_hand=2)

    with pytest.raises(StockAdjustmentError):
        adjust_stock(product=mug, delta=-3, note="lost")

    assert stock_of("MUG-001").on_hand == 2


def test_a_zero_adjustment_writes_no_ledger_line(make_product):
    mug = make_product("MUG-001", on_hand=2)
    lines_before = StockMovement.objects.count()

    adjust_stock(product=mug, delta=0, note="nothing")

    assert StockMovement.objects.count() == lines_before


def test_setting_a_counted_level_adjusts_by_the_difference(make_product):
    mug = make_product("MUG-001", on_hand=5)

    set_stock_level(product=mug, on_hand=8, note="stocktake")
    set_stock_level(product=mug, on_hand=8, note="stocktake again")
    set_stock_level(product=mug, on_hand=1, note="stocktake")

    assert stock_of("MUG-001").on_hand == 1
    assert list(StockMovement.objects.filter(product=mug).order_by("id").values_list("quantity", flat=True)) == [
        5,
        3,
        -7,
    ]


def test_setting_a_level_below_the_reserved_units_is_refused(mug_with_three_reserved):
    with pytest.raises(StockAdjustmentError):
        set_stock_level(product=mug_with_three_reserved, on_hand=2)

    assert stock_of("MUG-001").on_hand == 5


def test_reserving_an_order_with_one_short_line_reserves_nothing_and_reports_every_short_line(
    make_product, shopper, held_pipeline
):
    make_product("MUG-001", on_hand=1)
    make_product("TEE-002", on_hand=5)
    make_product("CAP-003", on_hand=0)
    order = shopper.buys({"MUG-001": 2, "TEE-002": 1, "CAP-003": 4})

    lines = list(order.lines.all())
    with transaction.atomic():
        shortages = reserve_stock([StockLine(line.product_id, line.quantity) for line in lines])

    sku = {line.product_id: line.sku for line in lines}
    assert [(sku[s.product_id], s.requested, s.available) for s in shortages] == [("MUG-001", 2, 1), ("CAP-003", 4, 0)]
    assert [stock_of(sku).reserved for sku in ("MUG-001", "TEE-002", "CAP-003")] == [0, 0, 0]


@pytest.mark.parametrize(
    "change",
    [{"on_hand": -1}, {"reserved": -1}, {"reserved": 6}],
    ids=["on-hand-below-zero", "reserved-below-zero", "reserved-above-on-hand"],
)
def test_the_database_itself_refuses_impossible_stock(make_product, change):
    make_product("MUG-001", on_hand=5)

    with pytest.raises(IntegrityError), transaction.atomic():
        Stock.objects.filter(product__sku="MUG-001").update(**change)

    stock = stock_of("MUG-001")
    assert (stock.on_hand, stock.reserved) == (5, 0)


def test_an_orders_stock_reads_as_deducted_from_its_sale_to_its_return_and_again_once_sold_again(
    make_product, shopper, held_pipeline
):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 3})
    held_pipeline.lose_queued()
    lines = [StockLine(line.product_id, line.quantity) for line in order.lines.all()]

    def moved(move: StockMove) -> tuple[bool, int, int]:
        with transaction.atomic():
            move_stock(move, lines, order_id=order.pk)
        stock = stock_of("MUG-001")
        return is_stock_deducted(order.pk), stock.on_hand, stock.reserved

    assert not is_stock_deducted(order.pk)
    assert moved(StockMove.DEDUCT) == (True, 2, 0)  # its reservation became the sale
    assert moved(StockMove.RETURN) == (False, 5, 0)
    with transaction.atomic():
        assert reserve_stock(lines) == []  # redriven: reserved again,
    assert moved(StockMove.DEDUCT) == (True, 2, 0)  # and sold again
