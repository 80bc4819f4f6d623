"""Stock under concurrency, on PostgreSQL: buyers racing over real HTTP, steps racing in
real worker processes and in threads, and what must hold afterwards (DESIGN.md's invariants):
no oversell, stock never below zero, the ledger summing to on hand, one charge per sale,
no deadlock.
"""

import itertools

import pytest
import requests

from inventory.models import Stock, StockMovement
from orders.audit import audit_invariants
from orders.models import FINAL_STATES, Order, OrderEvent
from orders.services import place_order
from payments.models import Payment, SimulatedPaymentIntent
from receipts.models import Receipt
from tests.support.concurrency import all_at_once
from tests.support.invariants import assert_stock_invariants, stock_of
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

BUYERS = 60
STOCK = 10


def wait_until_all_final(timeout: float = 120) -> None:
    wait_until(
        lambda: not Order.objects.exclude(state__in=FINAL_STATES).exists(),
        timeout=timeout,
        interval=0.25,
        message=lambda: (
            "orders still in flight: "
            + ", ".join(Order.objects.exclude(state__in=FINAL_STATES).values_list("state", flat=True))
        ),
    )


def assert_ledger_never_below_zero(sku: str) -> None:
    """Read in the order it was written, the ledger of a product never ran below zero."""
    running = list(
        itertools.accumulate(
            StockMovement.objects.filter(product__sku=sku).order_by("id").values_list("quantity", flat=True)
        )
    )
    assert min(running) >= 0, f"the ledger of {sku} went below zero: {running}"


def deadlocks() -> list[str]:
    return list(OrderEvent.objects.filter(error__icontains="deadlock").values_list("error", flat=True))


def step_errors() -> list[str]:
    """Errors of step attempts that did not succeed: none is expected when every card pays.

    Two nudges for one order (a duplicate message, a sweep) may meet at its email: the second
    waits for the first's claim, and that wait is not an error.
    """
    return list(
        OrderEvent.objects.filter(outcome__in=["retrying", "failed"])
        .exclude(to_state="REJECTED")
        .exclude(error__startswith="NotificationInProgress")
        .values_list("error", flat=True)
    )


@pytest.mark.requires_postgres
def test_sixty_buyers_racing_over_http_for_ten_units_buy_exactly_ten(shop, make_product):
    make_product("LAMP-010", price="30.00", on_hand=STOCK)
    shop.start_web(workers=2, threads=16)
    shop.start_cluster(workers=4)

    def buy(number: int) -> dict:
        return shop.place_order([("LAMP-010", 1)], email=f"buyer{number}@example.com", timeout=60)

    all_at_once(buy, BUYERS)  # every buyer sends at once; each is answered 202
    wait_until_all_final()

    states = {state: Order.objects.filter(state=state).count() for state in ("COMPLETED", "REJECTED")}
    assert states == {"COMPLETED": STOCK, "REJECTED": BUYERS - STOCK}, list(Order.objects.values_list("state"))
    assert_stock_invariants()
    assert_ledger_never_below_zero("LAMP-010")
    stock = stock_of("LAMP-010")
    assert (stock.on_hand, stock.reserved) == (0, 0)
    assert SimulatedPaymentIntent.objects.filter(status="succeeded", amount_refunded_minor=0).count() == STOCK
    assert SimulatedPaymentIntent.objects.count() == STOCK  # the rejected never reached the gateway
    assert set(Payment.objects.values_list("status", flat=True)) == {"captured"}
    assert Payment.objects.filter(order__state="COMPLETED").count() == STOCK
    assert Receipt.objects.count() == STOCK
    for rejected in Order.objects.filter(state="REJECTED")[:3]:
        assert rejected.failure_code == "out_of_stock"
    # A rejected order's email follows its final state (queued once the rejection commits).
    wait_until(lambda: len(shop.emails()) >= BUYERS, message=f"{len(shop.emails())} of {BUYERS} emails written")
    recipients = sorted(message["To"] for message in shop.emails())
    assert recipients == sorted(f"buyer{n}@example.com" for n in range(BUYERS))  # one email each
    listed = requests.get(f"{shop.url}/api/products/", timeout=30).json()
    products = listed["results"] if isinstance(listed, dict) else listed
    assert [p["available"] for p in products if p["sku"] == "LAMP-010"] == [0]
    assert not step_errors()


@pytest.mark.requires_postgres
def test_two_products_bought_in_opposite_line_orders_concurrently_never_deadlock(shop, make_product):
    orders_count = 30
    make_product("CUP-A", price="5.00", on_hand=100)
    make_product("CUP-B", price="7.00", on_hand=100)

    def place(n: int) -> None:
        """Place (and so reserve) one order, half of them listing B first.

        No cluster runs yet: the nudges wait in the queue for the cluster started below."""
        place_order(
            email=f"buyer{n}@example.com",
            lines=[{"sku": "CUP-A", "quantity": 1}, {"sku": "CUP-B", "quantity": 1}][:: 1 if n % 2 else -1],
            payment_method="pm_card_visa",
        )

    all_at_once(place, orders_count)

    assert not deadlocks()
    assert set(Order.objects.values_list("state", flat=True)) == {"VALIDATED"}
    assert list(Stock.objects.order_by("product__sku").values_list("reserved", flat=True)) == [orders_count] * 2

    # The rest of the pipeline (deductions lock both rows again) in two worker processes.
    shop.start_cluster(workers=2)
    wait_until_all_final()

    assert set(Order.objects.values_list("state", flat=True)) == {"COMPLETED"}
    assert not step_errors()
    assert_stock_invariants()
    for sku in ("CUP-A", "CUP-B"):
        assert_ledger_never_below_zero(sku)
        stock = stock_of(sku)
        assert (stock.on_hand, stock.reserved) == (100 - orders_count, 0)
    assert Payment.objects.filter(status="captured").count() == orders_count
    # One email each, whatever nudges the orders had.
    wait_until(lambda: len(shop.emails()) >= orders_count)
    assert sorted(m["To"] for m in shop.emails()) == sorted(f"buyer{n}@example.com" for n in range(orders_count))


@pytest.mark.requires_postgres
def test_many_buyers_of_the_last_units_of_one_product_in_threads_never_oversell(
    transactional_db, make_product, held_pipeline
):
    """The reservation is the accepting transaction's last statement: buyers who read stock
    that is gone by their update are rolled back and told what is left, never sold it."""
    buyers = 40
    make_product("LAMP-007", price="30.00", on_hand=7)

    def buy(number: int) -> str:
        placed = place_order(
            email=f"buyer{number}@example.com",
            lines=[{"sku": "LAMP-007", "quantity": 1 + number % 2}],  # one or two units each
            payment_method="pm_card_visa",
        )
        return placed.order.state

    states = all_at_once(buy, buyers)

    validated = Order.objects.filter(state="VALIDATED")
    assert set(states) == {"VALIDATED", "REJECTED"} and states.count("VALIDATED") == validated.count()
    assert Order.objects.count() == buyers  # every buyer has exactly one order: no attempt left behind
    taken = sum(line.quantity for order in validated for line in order.lines.all())
    stock = stock_of("LAMP-007")
    assert (stock.on_hand, stock.reserved) == (7, taken) and 6 <= taken <= 7  # a 2-unit buyer may find 1 left
    for rejected in Order.objects.filter(state="REJECTED"):
        assert rejected.failure_code == "out_of_stock"
        assert "available" in rejected.failure_reason
    assert not deadlocks()
    assert_stock_invariants()
    assert audit_invariants().ok
