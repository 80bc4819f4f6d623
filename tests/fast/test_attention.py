"""What needs a manager, worked down to zero, and what is retrying right now: "Mark handled"
on an order and in bulk (a note required), and the "Retrying now" list, tile, monitoring
figure and metric."""

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.db import connection

from backoffice import actions
from backoffice.actions import ActionRefused
from orders import history
from orders.models import EventKind, Order, OrderEvent
from orders.pipeline import run_step
from tests.support.metrics_scrape import TOKEN, scrape
from tests.support.order_admin import action_page, form_token, listed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("stock_invariants_hold")

ORDERS = "/admin/orders/order/"


def tiles(client) -> dict[str, str]:
    """The home page's tiles: their link and the count each shows."""
    html = client.get("/admin/").content.decode()
    return dict(re.findall(r'href="([^"]+)" class="tile[^"]*"[^>]*>\s*<span[^>]*>(\d+)</span>', html))


def needing_attention(client) -> str:
    return tiles(client)[f"{ORDERS}?attention=needs"]


def failed_order(shopper) -> Order:
    order = shopper.buys({"MUG-001": 1}, pay_with="pm_sim_unavailable")
    order.refresh_from_db()
    assert order.state == "FAILED"
    return order


def reconciler_flagged(shopper) -> Order:
    order = shopper.buys({"MUG-001": 1})
    history.flag_order(
        order, actor=history.RECONCILER, step="reconcile_payments", finding="amount (pi_1)", message="amount: differs"
    )
    return order


def test_a_manager_marks_a_failed_order_handled_with_a_note_and_the_tile_goes_to_zero(manager, make_product, shopper):
    make_product("MUG-001", on_hand=5)
    order = failed_order(shopper)
    assert needing_attention(manager) == "1"

    page = manager.get(action_page(order, "handled")).content.decode()
    assert "Mark handled" in page and "It stays FAILED and may still be redriven." in page
    without_note = manager.post(action_page(order, "handled"), {"reason": " ", "action_token": form_token(page)})
    assert without_note.status_code == 200 and "This field is required." in without_note.content.decode()
    assert not order.events.filter(kind=EventKind.MARKED_HANDLED).exists()

    done = manager.post(
        action_page(order, "handled"),
        {"reason": "Shopper paid by bank transfer instead", "action_token": form_token(page)},
        follow=True,
    )

    assert f"Order {order.reference}: marked handled; it no longer needs attention." in done.content.decode()
    assert needing_attention(manager) == "0"
    assert listed(manager.get(f"{ORDERS}?attention=needs")) == set()
    event = order.events.get(kind=EventKind.MARKED_HANDLED)
    assert (event.actor_kind, event.actor) == ("manager", "manager")
    assert event.summary == "Marked handled (failed, redrivable): Shopper paid by bank transfer instead"
    order.refresh_from_db()
    assert order.state == "FAILED"  # nothing else changed: it may still be redriven


def test_a_handled_failed_order_that_fails_again_after_a_redrive_needs_attention_again(manager, make_product, shopper):
    make_product("MUG-001", on_hand=5)
    order = failed_order(shopper)
    actions.mark_handled(order, manager="boss", reason="Told the shopper", action_token="t1")
    assert needing_attention(manager) == "0"

    actions.redrive_order(order, manager="boss", reason="Try again", action_token="t2")  # the provider still down

    order.refresh_from_db()
    assert order.state == "FAILED"
    assert needing_attention(manager) == "1"


def test_an_order_that_needs_nothing_cannot_be_marked_handled(make_product, shopper):
    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1})

    with pytest.raises(ActionRefused, match="does not need attention"):
        actions.mark_handled(order, manager="boss", reason="nothing", action_token="t1")
    assert not order.events.filter(kind=EventKind.MARKED_HANDLED).exists()


def test_a_form_posted_twice_marks_the_order_handled_once(make_product, shopper):
    make_product("MUG-001", on_hand=5)
    order = reconciler_flagged(shopper)

    actions.mark_handled(order, manager="boss", reason="Stripe fee, not a loss", action_token="t1")
    again = actions.mark_handled(order, manager="boss", reason="Stripe fee, not a loss", action_token="t1")

    assert again.already_done
    assert order.events.filter(kind=EventKind.MARKED_HANDLED).count() == 1


def test_bulk_mark_handled_needs_a_note_writes_nothing_without_one_and_clears_every_order_with_one(
    manager, make_product, shopper
):
    make_product("MUG-001", on_hand=10)
    orders = [failed_order(shopper), failed_order(shopper), reconciler_flagged(shopper)]
    calm = shopper.buys({"MUG-001": 1})
    selected = {"action": "mark_handled_selected", "_selected_action": [o.pk for o in [*orders, calm]]}
    assert needing_attention(manager) == "3"

    confirmation = manager.post(ORDERS, selected).content.decode()
    assert "Mark handled: 4 orders" in confirmation and "Skipped: " in confirmation  # the calm one
    no_note = manager.post(
        ORDERS, {**selected, "confirmed": "yes", "reason": "", "action_token": form_token(confirmation)}
    )
    assert no_note.status_code == 200 and "This field is required." in no_note.content.decode()
    assert not OrderEvent.objects.filter(kind=EventKind.MARKED_HANDLED).exists()
    assert needing_attention(manager) == "3"

    done = manager.post(
        ORDERS,
        {**selected, "confirmed": "yes", "reason": "Outage settled", "action_token": form_token(confirmation)},
        follow=True,
    ).content.decode()

    assert done.count("marked handled; it no longer needs attention.") == 3
    assert f"Not done: {calm.reference} does not need attention" in done
    assert needing_attention(manager) == "0"
    handled = OrderEvent.objects.filter(kind=EventKind.MARKED_HANDLED)
    assert sorted(handled.values_list("order_id", flat=True)) == sorted(o.pk for o in orders)
    assert set(handled.values_list("actor", "parameters__note")) == {("manager", "Outage settled")}


def test_an_order_manager_without_the_permission_is_refused_mark_handled(staff_client, make_product, shopper):
    from django.contrib.auth.models import Permission

    make_product("MUG-001", on_hand=5)
    order = failed_order(shopper)
    client = staff_client("manager")
    client.user.groups.first().permissions.remove(Permission.objects.get(codename="mark_order_handled"))

    refused = client.post(action_page(order, "handled"), {"reason": "x", "action_token": "t1"})

    assert refused.status_code == 403
    assert "orders.mark_order_handled" in refused.content.decode()
    assert not order.events.filter(kind=EventKind.MARKED_HANDLED).exists()


# --- Retrying now ----------------------------------------------------------------------------


@dataclass
class PaymentRetrying:
    order: Order
    provider_back: Callable[[], None]


@pytest.fixture
def payment_retrying(make_product, shopper, held_pipeline, settings):
    """An order whose payment is failing (the simulated provider down) and being retried by
    a worker, in a thread of this test; `.provider_back()` ends the outage and waits for the
    worker to finish the step."""
    make_product("MUG-001", on_hand=5)
    settings.PIPELINE_BACKOFF_SCALE = 8  # 4 s, 8 s, 16 s between attempts: time to look
    order = shopper.buys({"MUG-001": 1}, pay_with="pm_sim_unavailable")

    def work():
        try:
            run_step(order.pk, "process_payment")
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    wait_until(
        lambda: order.events.filter(kind=EventKind.STEP_RETRYING).exists(),
        timeout=30,
        message="the payment never failed",
    )

    def provider_back() -> None:
        settings.SIMULATED_GATEWAY_OUTAGE = False
        worker.join(timeout=60)
        assert not worker.is_alive()

    try:
        yield PaymentRetrying(order, provider_back)
    finally:
        settings.SIMULATED_GATEWAY_OUTAGE = False
        worker.join(timeout=60)


def retrying_rows(client) -> dict[str, list[str]]:
    """The "Retrying now" list: each order's reference and its other columns' texts."""
    html = client.get(f"{ORDERS}?attention=retrying").content.decode()
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", html, re.DOTALL):
        if reference := re.search(r"(ord_[A-Za-z0-9_-]{22})</a>", row):
            cells = re.findall(r'<td class="field-[^"]+">(.*?)</td>', row, re.DOTALL)
            rows[reference.group(1)] = [re.sub(r"<[^>]+>", "", cell).strip() for cell in cells]
    return rows


def test_retrying_now_lists_an_order_whose_payment_is_failing_with_its_attempt_and_next_try(
    manager, payment_retrying, settings
):
    settings.METRICS_TOKEN = TOKEN
    order = payment_retrying.order

    rows = retrying_rows(manager)
    state, step, attempts, error, next_try = rows[order.reference]
    assert (state, step) == ("Validated", "process_payment")
    assert re.fullmatch(r"[123] of 4", attempts), attempts
    assert error == "TransientGatewayError: Simulated connection error before the charge."
    assert re.fullmatch(r"\d\d:\d\d:\d\d \((in \d+ s|\d+ s late)\)", next_try), next_try
    assert tiles(manager)[f"{ORDERS}?attention=retrying"] == "1"
    monitoring = manager.get("/admin/monitoring/").content.decode()
    assert re.search(r'id="retrying-now"><span>Retrying now</span><strong class="alert">1</strong>', monitoring)
    assert scrape(manager, TOKEN)[("shop_orders_retrying", (("step", "process_payment"),))] == 1

    payment_retrying.provider_back()

    order.refresh_from_db()
    assert order.state != "VALIDATED"  # paid now: the worker went on
    assert retrying_rows(manager) == {}
    assert tiles(manager)[f"{ORDERS}?attention=retrying"] == "0"
    assert ("shop_orders_retrying", (("step", "process_payment"),)) not in scrape(manager, TOKEN)


def test_retrying_now_lists_a_receipt_waiting_for_its_retry_row_however_long_ago_it_failed(
    manager, make_product, shopper, held_pipeline, settings
):
    from datetime import timedelta

    from django.utils import timezone

    from orders import pipeline
    from orders.models import ScheduledRetry
    from tests.support.faults import break_receipt_storage

    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 1})
    held_pipeline.run_by_hand(order, "process_payment", "update_inventory")
    settings.PIPELINE_BACKOFF_SCALE = 1000  # the retry waits far off: nothing runs it here
    break_receipt_storage(settings)
    pipeline.advance_order(order.pk)
    an_hour_ago = timezone.now() - timedelta(hours=1)
    order.events.filter(kind=EventKind.STEP_RETRYING).update(created_at=an_hour_ago)  # out of the window

    state, step, attempts, error, next_try = retrying_rows(manager)[order.reference]

    assert (state, step, attempts) == ("Confirmed", "generate_receipt", "1 of 3")
    assert error.startswith("FileExistsError") or error.startswith("NotADirectoryError"), error
    due = timezone.localtime(ScheduledRetry.objects.get(order=order).due_at)
    assert next_try.startswith(f"{due:%H:%M:%S} (in ")
