"""Stripe with the shop's real processes: a gunicorn web server and a `qcluster`, both on
PAYMENT_GATEWAY=stripe and pointed at the local Stripe server of the test; and a shopper
paying by card in Chromium with the shop on its production settings."""

import json

import pytest
import requests

from orders.models import Order
from tests.support.fake_stripe import WEBHOOK_SECRET, WEBHOOK_URL, sign
from tests.support.invariants import stock_of
from tests.support.shop_page import (  # noqa: F401  (_orm_beside_playwright: the page's autouse fixture)
    PRODUCTION_PAGE_ENV,
    _orm_beside_playwright,
    buy_by_card_through_3d_secure,
    serve_built_assets,
    shopper_page,
)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def stripe_env(fake_stripe) -> dict[str, str]:
    """What the processes need to talk to the test's Stripe server."""
    fake_stripe.hang_seconds = 60  # long enough for a test to kill the worker waiting on it
    return {
        "PAYMENT_GATEWAY": "stripe",
        "STRIPE_SECRET_KEY": fake_stripe.api_key,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": fake_stripe.url,
        "STRIPE_MAX_NETWORK_RETRIES": "0",
    }


@pytest.fixture
def production_env(stripe_env) -> dict[str, str]:
    """deploy/production.env's choices on loopback (PRODUCTION_PAGE_ENV), with the test's Stripe."""
    return {**stripe_env, **PRODUCTION_PAGE_ENV, "DJANGO_ALLOWED_HOSTS": "127.0.0.1"}


def test_a_shopper_pays_by_card_through_3d_secure_on_the_production_settings(
    shop, make_product, fake_stripe, production_env
):
    make_product("MUG-001", price="12.50", on_hand=5, name="Ceramic mug")
    shop.start_web(**production_env)
    shop.start_cluster(**production_env)

    with shopper_page() as page:
        serve_built_assets(page)
        receipt = buy_by_card_through_3d_secure(page, fake_stripe, shop.url, "Ceramic mug", name="production")
        policy = page.request.get(page.url).headers["content-security-policy"]
        assert page.policy_violations == []

    order = Order.objects.get()
    assert order.state == "COMPLETED"
    assert order.payment_method == "pm_card_threeDSecure2Required"
    assert receipt.startswith(b"%PDF")
    assert "script-src 'self' https://js.stripe.com" in policy
    not_found = requests.get(shop.url + "/no-such-page", timeout=30)
    assert not_found.status_code == 404 and "DEBUG = True" not in not_found.text  # debug really off


def test_a_cluster_killed_while_stripe_charges_leaves_an_order_completed_later_with_one_charge(
    shop, make_product, fake_stripe, stripe_env
):
    make_product("MUG-001", price="12.50", on_hand=5)
    shop.start_web(**stripe_env)
    cluster = shop.start_cluster(STRIPE_TIMEOUT_SECONDS="30", **stripe_env)
    fake_stripe.hang_next("create_intent")  # Stripe charges; the worker waits for an answer

    reference = shop.place_order([("MUG-001", 2)])["reference"]
    wait_until(lambda: fake_stripe.intents_for(reference), message=f"no charge:\n{shop.logs()}")
    cluster.kill()
    assert Order.objects.get(reference=reference).state == "VALIDATED"

    shop.start_cluster(**stripe_env)
    # Nudged by the pipeline tick once the dead worker's lease on the order lapsed (35 s).
    body = shop.wait_for_final_state(reference, timeout=90)

    assert body["state"] == "COMPLETED", body
    [intent] = fake_stripe.intents_for(reference)
    assert intent["status"] == "succeeded"
    assert fake_stripe.charge_of(intent["id"])["amount_captured"] == 2500
    assert fake_stripe.calls_of("create_intent")[-1].replayed
    assert stock_of("MUG-001").on_hand == 3


def test_a_webhook_answered_by_the_web_process_completes_a_3d_secure_order_in_the_cluster(
    shop, make_product, fake_stripe, stripe_env
):
    make_product("MUG-001", price="12.50", on_hand=5)
    shop.start_web(**stripe_env)
    shop.start_cluster(**stripe_env)
    reference = shop.place_order([("MUG-001", 1)], payment_method="pm_card_threeDSecure2Required")["reference"]
    waiting = wait_until(
        lambda: (body := shop.order(reference))["payment_action"] and body,
        message=f"the order never asked for authentication:\n{shop.logs()}",
    )
    assert waiting["state"] == "VALIDATED"
    [intent] = fake_stripe.intents_for(reference)
    assert waiting["payment_action"]["client_secret"] == intent["client_secret"]

    payload = json.dumps(fake_stripe.authenticate(intent["id"]))
    tampered = requests.post(
        shop.url + WEBHOOK_URL,
        data=payload.replace("requires_capture", "succeeded"),
        headers={"Stripe-Signature": sign(payload, WEBHOOK_SECRET), "Content-Type": "application/json"},
        timeout=30,
    )
    accepted = requests.post(
        shop.url + WEBHOOK_URL,
        data=payload,
        headers={"Stripe-Signature": sign(payload, WEBHOOK_SECRET), "Content-Type": "application/json"},
        timeout=30,
    )
    body = shop.wait_for_final_state(reference)

    assert (tampered.status_code, accepted.status_code) == (400, 200)
    assert body["state"] == "COMPLETED", body
    assert fake_stripe.intents[intent["id"]]["status"] == "succeeded"
