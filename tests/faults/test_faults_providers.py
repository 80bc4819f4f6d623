"""The fault suite, part three: a provider goes down while shoppers place orders, and the
shop rides it out. Stripe (the test's Stripe server) answers 503 to everything for a while:
its circuit breaker opens within its threshold, the payments wait instead of spending their
attempts, the shopper's status says so, and once Stripe is back every order completes with
one charge and a clean audit; the breaker's alarm fired once and cleared. A manager's hold
on captures under load keeps every capture call from Stripe until it is released.

The shop's real processes (gunicorn, a cluster) share this test's database and its database
cache, where the breakers and the holds' cache live. `make faults` runs the scenarios at
full size (FAULT_PROFILE=full: 100 orders, a 60 s outage), CI the bounded profile.
"""

import time

import pytest
import requests

from monitoring.models import AlarmFiring
from orders import holds
from tests.support.fake_stripe import WEBHOOK_SECRET
from tests.support.faults import Shoppers, figures_of, scenario_size
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.faults]

SKUS = ["FAULT-MUG", "FAULT-TEE"]
ORDERS = scenario_size(full=100, bounded=20)
OUTAGE_SECONDS = scenario_size(full=60, bounded=12)
# Every order is final this long after Stripe is back: the next probe (a cool-down and a
# recheck away), then the waiting payments and captures worked through by two workers.
RECOVERY_BUDGET = scenario_size(full=60, bounded=30)
STRIPE_OPERATIONS = ("create_intent", "capture_intent", "cancel_intent", "retrieve_intent", "create_refund")
BREAKERS = {
    "BREAKER_FAILURES": "3",
    "BREAKER_FAILURE_RATIO": "0.5",
    "BREAKER_WINDOW_SECONDS": "30",
    "BREAKER_COOL_DOWN_SECONDS": "2",
    "STEP_WAIT_RECHECK_SECONDS": "1",
}


@pytest.fixture
def shared_cache(settings):
    """This process on the shop's own cache (the database's), so what it reads and clears
    (a breaker, the holds) is what the shop's processes see."""
    settings.CACHES = {
        **settings.CACHES,
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_cache"},
    }
    from django.core.cache import cache

    # Emptied first: an earlier test's processes counted their calls to Stripe in the same
    # table, and a window full of their successes keeps the failure ratio under the threshold.
    cache.clear()


@pytest.fixture
def stripe_shop(shop, fake_stripe, make_product, shared_cache):
    for sku in SKUS:
        make_product(sku, price="9.50", on_hand=10_000)
    env = {
        "PAYMENT_GATEWAY": "stripe",
        "STRIPE_SECRET_KEY": fake_stripe.api_key,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": fake_stripe.url,
        "STRIPE_MAX_NETWORK_RETRIES": "0",
        "STRIPE_TIMEOUT_SECONDS": "2",
        "PAYMENT_SIMULATED_FAULTS": "false",
        **BREAKERS,
    }
    shop.extra_env.update(env)
    shop.start_web(workers=2)
    shop.start_cluster(workers=2)
    return shop


def stripe_down(fake_stripe) -> None:
    for operation in STRIPE_OPERATIONS:
        fake_stripe.fail_next(operation, status=503, times=1_000_000)


def stripe_back(fake_stripe) -> None:
    fake_stripe.faults.clear()


def failed_calls(fake_stripe) -> int:
    return sum(1 for call in list(fake_stripe.calls) if call.status and call.status >= 500)


def waiting_seen(shop, reference: str) -> str | None:
    return requests.get(f"{shop.url}/api/orders/{reference}/", timeout=10).json()["waiting"]


def test_stripe_down_while_orders_are_placed_fails_none_and_every_order_completes_once_it_is_back(
    stripe_shop, fake_stripe, report_fault
):
    shop = stripe_shop
    stripe_down(fake_stripe)
    down_at = time.monotonic()
    shoppers = Shoppers(lambda: shop.url, SKUS, ORDERS, per_second=ORDERS / (OUTAGE_SECONDS * 0.8)).start()
    shoppers.wait_for_placed(1)
    first = shoppers.placed[0]
    shopper_read = wait_until(
        lambda: waiting_seen(shop, first), timeout=60, message="the shopper's status never said the payment waits"
    )
    shop.manage("evaluate_alarms")
    time.sleep(OUTAGE_SECONDS)  # the outage itself: Stripe stays down this long
    shoppers.join()
    failed_during_outage = failed_calls(fake_stripe)
    stripe_back(fake_stripe)
    back_at = time.monotonic()
    cool_downs = (back_at - down_at) / float(BREAKERS["BREAKER_COOL_DOWN_SECONDS"])

    figures = figures_of(
        f"Stripe down {OUTAGE_SECONDS} s", shoppers, shop, recovery_budget=RECOVERY_BUDGET, fault_over_at=back_at
    )
    report_fault(figures)
    shop.manage("evaluate_alarms")

    figures.assert_held()
    assert figures.states == {"COMPLETED": figures.orders}
    assert shopper_read == "Your payment is waiting to go through; there is nothing you need to do."
    # The breaker opened at its threshold (plus what two workers had in flight), then let one
    # probe through per cool-down: far fewer calls than every order's four attempts.
    assert failed_during_outage <= 3 + 2 + cool_downs + 1, (failed_during_outage, cool_downs)
    for reference in shoppers.placed:
        charged = [i for i in fake_stripe.intents_for(reference) if i["status"] == "succeeded"]
        assert len(charged) == 1, (reference, fake_stripe.intents_for(reference))
    [firing] = AlarmFiring.objects.filter(rule="circuit_breakers")
    assert firing.resolved_at is not None
    assert "stripe" in firing.summary


def test_a_hold_on_captures_under_load_keeps_every_capture_from_stripe_until_released(
    stripe_shop, fake_stripe, report_fault
):
    shop = stripe_shop
    hold = holds.place_hold(side="captures", reason="Stripe incident INC-7", manager="maria")
    shoppers = Shoppers(lambda: shop.url, SKUS, ORDERS, per_second=ORDERS / (OUTAGE_SECONDS * 0.8)).start()
    shoppers.join()
    wait_until(
        lambda: all(shop.order(reference)["state"] == "PAID" for reference in shoppers.placed),
        timeout=60,
        message="the orders never all reached PAID",
    )
    shop.manage("evaluate_alarms")
    assert fake_stripe.calls_of("capture_intent") == []
    paid = shop.order(shoppers.placed[0])
    assert paid["waiting"] == "Your payment is waiting to be completed; there is nothing you need to do."

    holds.release_hold(hold, reason="Stripe is back", manager="maria")
    released_at = time.monotonic()
    figures = figures_of(
        "Captures held under load", shoppers, shop, recovery_budget=RECOVERY_BUDGET, fault_over_at=released_at
    )
    report_fault(figures)
    shop.manage("evaluate_alarms")

    figures.assert_held()
    assert figures.states == {"COMPLETED": figures.orders}
    assert len(fake_stripe.calls_of("capture_intent")) == figures.orders
    [firing] = AlarmFiring.objects.filter(rule="pipeline_held")
    assert firing.resolved_at is not None and "maria" in firing.summary
    history = shop.order(shoppers.placed[0])["history"]
    assert [e["step"] for e in history if e["outcome"] == "skipped"][:2] == ["update_inventory", "update_inventory"]
    from orders.models import OrderEvent

    held = OrderEvent.objects.filter(order__reference=shoppers.placed[0], step="update_inventory", outcome="skipped")
    assert {(e.kind, e.actor) for e in held} == {("step_held", "maria"), ("hold_released", "maria")}
