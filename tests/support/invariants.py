"""What every scenario must leave true (DESIGN.md's invariants), as assertions tests share."""

from django.db.models import Sum

from inventory.models import Product, Stock, StockMovement
from orders.models import Order, OrderEvent, OrderLine
from payments.models import Payment, SimulatedPaymentIntent


def row_counts() -> dict[str, int]:
    """How many rows the order path has written, to prove a request wrote nothing."""
    return {model.__name__: model.objects.count() for model in (Order, OrderLine, OrderEvent, StockMovement, Payment)}


def assert_ledger_sums_to_on_hand() -> None:
    """Every product's ledger lines add up to its stock on hand."""
    ledger = dict(StockMovement.objects.values_list("product_id").annotate(total=Sum("quantity")))
    for stock in Stock.objects.select_related("product"):
        assert ledger.get(stock.product_id, 0) == stock.on_hand, (
            f"{stock.product.sku}: ledger sums to {ledger.get(stock.product_id, 0)}, on hand is {stock.on_hand}"
        )


def assert_stock_within_bounds() -> None:
    """No stock below zero, and never more reserved than on hand."""
    for stock in Stock.objects.select_related("product"):
        assert 0 <= stock.reserved <= stock.on_hand, f"{stock.product.sku}: {stock}"


def assert_stock_invariants() -> None:
    assert_ledger_sums_to_on_hand()
    assert_stock_within_bounds()


def stock_of(sku: str) -> Stock:
    """The stock row of a product, read fresh."""
    return Stock.objects.get(product=Product.objects.get(sku=sku))


def history(order: Order) -> list[tuple]:
    """The order's execution history as (step, outcome, attempt, to_state)."""
    return list(
        OrderEvent.objects.filter(order=order).order_by("id").values_list("step", "outcome", "attempt", "to_state")
    )


def sales_in_ledger(order: Order) -> list[tuple[str, int]]:
    return list(StockMovement.objects.filter(order=order).order_by("id").values_list("reason", "quantity"))


def charged_intents() -> int:
    """Payment intents the simulated provider holds or took money on."""
    return SimulatedPaymentIntent.objects.filter(status__in=["requires_capture", "succeeded"]).count()
