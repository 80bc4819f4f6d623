"""Prometheus metrics: each family counts what happened, /metrics is for a token's bearer,
and the shipped alert rules and dashboard name only metrics that exist.

Counts are read from this process's own values (the tests run the pipeline inline), so
other processes writing to the same multiprocess folder cannot disturb them; `/metrics`
itself sums every process, which tests/processes/test_metrics_processes.py proves with real ones.
"""

import json
import re

import pytest
import yaml
from django.core import mail
from prometheus_client import REGISTRY

from config.metrics_view import ShopFactsCollector
from orders import sweeper
from orders.models import Order
from payments.reconciliation import reconcile_payments
from tests.support.due_retries import run_due_retries
from tests.support.fake_stripe import deliver
from tests.support.metrics_scrape import TOKEN, scrape
from tests.support.processes import PROJECT_DIR
from tests.support.settings_probe import in_fresh_process

DEPLOY = PROJECT_DIR / "deploy"


def value(name: str, **labels: str) -> float:
    """This process's value of one sample (0 when never recorded)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Counts:
    """What the listed samples gained since this object was made."""

    def __init__(self, *samples: tuple[str, dict]):
        self.before = {self._key(s): value(s[0], **s[1]) for s in samples}

    @staticmethod
    def _key(sample):
        return (sample[0], tuple(sorted(sample[1].items())))

    def gained(self, name: str, **labels: str) -> float:
        return value(name, **labels) - self.before[(name, tuple(sorted(labels.items())))]


def s(name: str, **labels: str) -> tuple[str, dict]:
    return (name, labels)


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def test_orders_placed_and_ended_are_counted_by_state_and_currency_with_their_latency(shopper, make_product):
    make_product("MUG-001", on_hand=10)
    make_product("TEA-EUR", currency="EUR", on_hand=10)
    counts = Counts(
        s("shop_orders_placed_total", currency="USD"),
        s("shop_orders_placed_total", currency="EUR"),
        s("shop_orders_ended_total", state="COMPLETED", currency="USD"),
        s("shop_orders_ended_total", state="PAYMENT_FAILED", currency="USD"),
        s("shop_orders_ended_total", state="REJECTED", currency="EUR"),
        s("shop_order_completion_seconds_count"),
    )

    shopper.buys({"MUG-001": 1})
    shopper.buys({"MUG-001": 1})
    shopper.buys({"MUG-001": 1}, pay_with="pm_card_chargeDeclined")
    shopper.buys({"TEA-EUR": 50})  # more than in stock: rejected

    assert counts.gained("shop_orders_placed_total", currency="USD") == 3
    assert counts.gained("shop_orders_placed_total", currency="EUR") == 1
    assert counts.gained("shop_orders_ended_total", state="COMPLETED", currency="USD") == 2
    assert counts.gained("shop_orders_ended_total", state="PAYMENT_FAILED", currency="USD") == 1
    assert counts.gained("shop_orders_ended_total", state="REJECTED", currency="EUR") == 1
    assert counts.gained("shop_order_completion_seconds_count") == 2


def test_every_step_attempt_is_counted_by_outcome_and_timed_and_retries_are_counted(shopper, make_product):
    make_product("MUG-001", on_hand=10)
    counts = Counts(
        s("shop_step_attempts_total", step="process_payment", outcome="succeeded"),
        s("shop_step_attempts_total", step="process_payment", outcome="retrying"),
        s("shop_step_attempts_total", step="generate_receipt", outcome="succeeded"),
        s("shop_step_duration_seconds_count", step="process_payment"),
        s("shop_step_retries_total", step="process_payment"),
    )

    shopper.buys({"MUG-001": 1})
    order = shopper.buys({"MUG-001": 1}, pay_with="pm_sim_transient_error")  # fails once, then succeeds

    assert order.events.filter(step="process_payment").count() == 3 - 1  # retrying, then succeeded
    assert counts.gained("shop_step_attempts_total", step="process_payment", outcome="succeeded") == 2
    assert counts.gained("shop_step_attempts_total", step="process_payment", outcome="retrying") == 1
    assert counts.gained("shop_step_attempts_total", step="generate_receipt", outcome="succeeded") == 2
    assert counts.gained("shop_step_duration_seconds_count", step="process_payment") == 3
    assert counts.gained("shop_step_retries_total", step="process_payment") == 1


def test_a_rolled_back_attempt_is_not_counted(make_product, shopper, held_pipeline):
    from django.db import transaction

    from orders import history

    make_product("MUG-001", on_hand=10)
    order = shopper.buys({"MUG-001": 1})
    counts = Counts(s("shop_step_attempts_total", step="process_payment", outcome="retrying"))

    with pytest.raises(RuntimeError), transaction.atomic():
        history.step_retrying(order, history.start_run("process_payment", order), RuntimeError("boom"))
        raise RuntimeError("the transaction rolls back")

    assert counts.gained("shop_step_attempts_total", step="process_payment", outcome="retrying") == 0


def test_payment_outcomes_are_counted_by_provider_status_and_decline_code(shopper, make_product):
    make_product("MUG-001", on_hand=10)
    counts = Counts(
        s("shop_payment_outcomes_total", provider="simulated", status="authorized", decline_code=""),
        s("shop_payment_outcomes_total", provider="simulated", status="captured", decline_code=""),
        s("shop_payment_outcomes_total", provider="simulated", status="declined", decline_code="generic_decline"),
        s("shop_payment_outcomes_total", provider="simulated", status="declined", decline_code="insufficient_funds"),
    )

    shopper.buys({"MUG-001": 1})
    shopper.buys({"MUG-001": 1}, pay_with="pm_card_chargeDeclined")
    shopper.buys({"MUG-001": 1}, pay_with="pm_card_chargeDeclined")
    shopper.buys({"MUG-001": 1}, pay_with="pm_card_chargeDeclinedInsufficientFunds")

    labels = {"provider": "simulated"}
    assert counts.gained("shop_payment_outcomes_total", **labels, status="authorized", decline_code="") == 1
    assert counts.gained("shop_payment_outcomes_total", **labels, status="captured", decline_code="") == 1
    declined = {**labels, "status": "declined"}
    assert counts.gained("shop_payment_outcomes_total", **declined, decline_code="generic_decline") == 2
    assert counts.gained("shop_payment_outcomes_total", **declined, decline_code="insufficient_funds") == 1


def test_receipts_rendered_and_emails_sent_are_counted(shopper, make_product):
    make_product("MUG-001", on_hand=10)
    counts = Counts(
        s("shop_receipts_rendered_total"),
        s("shop_receipt_render_seconds_count"),
        s("shop_emails_total", kind="confirmation", outcome="sent"),
        s("shop_emails_total", kind="failure", outcome="sent"),
    )

    shopper.buys({"MUG-001": 1})
    shopper.buys({"MUG-001": 1})
    shopper.buys({"MUG-001": 1}, pay_with="pm_card_chargeDeclined")

    assert len(mail.outbox) == 3
    assert counts.gained("shop_receipts_rendered_total") == 2
    assert counts.gained("shop_receipt_render_seconds_count") == 2
    assert counts.gained("shop_emails_total", kind="confirmation", outcome="sent") == 2
    assert counts.gained("shop_emails_total", kind="failure", outcome="sent") == 1


def test_an_email_the_server_refuses_is_counted_as_failed_at_each_attempt(shopper, make_product, settings):
    import socket

    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    make_product("MUG-001", on_hand=10)
    counts = Counts(
        s("shop_emails_total", kind="confirmation", outcome="failed"),
        s("shop_emails_total", kind="confirmation", outcome="sent"),
    )

    order = shopper.buys({"MUG-001": 1})
    run_due_retries()

    order.refresh_from_db()
    assert order.needs_attention
    attempts = order.events.filter(step="send_notification").count()
    assert attempts == 5
    assert counts.gained("shop_emails_total", kind="confirmation", outcome="failed") == attempts
    assert counts.gained("shop_emails_total", kind="confirmation", outcome="sent") == 0


def test_webhook_events_are_counted_as_accepted_duplicate_or_refused(api, shopper, make_product, fake_stripe):
    make_product("MUG-001", price="12.50", on_hand=5)
    order = shopper.buys({"MUG-001": 2})
    [intent] = fake_stripe.intents_for(order.reference)
    event = fake_stripe.event("payment_intent.succeeded", intent["id"])
    outcomes = ("accepted", "duplicate", "refused")
    counts = Counts(*(s("shop_webhook_events_total", provider="stripe", outcome=o) for o in outcomes))

    assert deliver(api, event).status_code == 200
    assert deliver(api, event).json()["duplicate"] is True
    assert deliver(api, event, secret="whsec_someone_else").status_code == 400

    for outcome in outcomes:
        assert counts.gained("shop_webhook_events_total", provider="stripe", outcome=outcome) == 1


def test_the_sweepers_redrives_are_counted_by_what_it_found(make_product, shopper, held_pipeline, settings):
    make_product("MUG-001", on_hand=10)
    shopper.buys({"MUG-001": 1})
    shopper.buys({"MUG-001": 1})
    held_pipeline.lose_queued()  # the broker lost both orders' next step
    settings.ORDER_STUCK_AFTER_SECONDS = 0
    counts = Counts(s("shop_sweeper_redrives_total", reason="stuck"))

    assert sweeper.sweep_stuck_orders() == 2

    assert counts.gained("shop_sweeper_redrives_total", reason="stuck") == 2


def test_a_mismatch_the_reconciler_finds_is_counted_once(shopper, make_product, fake_stripe, settings):
    fake_stripe.check_books = False  # Stripe's books and ours disagree on purpose
    settings.PAYMENT_RECONCILE_AFTER_SECONDS = 0
    make_product("MUG-001", price="12.50", on_hand=5)
    order = shopper.buys({"MUG-001": 2})
    [intent] = fake_stripe.intents_for(order.reference)
    intent["status"] = "canceled"
    counts = Counts(s("shop_reconciler_mismatches_total"))

    assert reconcile_payments() == 1
    assert reconcile_payments() == 0  # found before: not counted again

    assert counts.gained("shop_reconciler_mismatches_total") == 1


def test_the_present_is_read_at_scrape_time_open_orders_queue_and_low_stock(
    client, make_product, shopper, held_pipeline, metrics_token
):
    make_product("MUG-001", on_hand=10)
    low = make_product("LAMP-01", on_hand=10)
    low.low_stock_threshold = 8
    low.save()
    shopper.buys({"MUG-001": 1})
    shopper.buys({"LAMP-01": 3})  # 7 left, under its threshold of 8

    samples = scrape(client)

    assert samples[("shop_open_orders", (("state", "VALIDATED"),))] == 2
    assert samples[("shop_open_orders", (("state", "PAID"),))] == 0
    assert samples[("shop_open_order_oldest_age_seconds", (("state", "VALIDATED"),))] >= 0
    assert samples[("shop_queue_depth", ())] == 2  # each order's next step, held
    assert samples[("shop_queue_oldest_task_age_seconds", ())] >= 0
    assert samples[("shop_low_stock_available_units", (("sku", "LAMP-01"),))] == 7
    assert ("shop_low_stock_available_units", (("sku", "MUG-001"),)) not in samples
    assert samples[("shop_products_low_on_stock", ())] == 1
    assert all(samples[("shop_facts_up", (("fact", fact),))] == 1 for fact in ("open_orders", "queue", "stock"))


def test_metrics_need_the_bearer_token(client, transactional_db, metrics_token):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics")["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic czNjcmV0").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}x").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def test_without_a_token_metrics_are_refused_to_everyone_when_debug_is_off(client, transactional_db, settings):
    settings.METRICS_TOKEN = ""
    settings.DEBUG = False

    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403

    settings.DEBUG = True  # `make run` on a laptop
    assert client.get("/metrics").status_code == 200


def _metric_names_in(expression: str) -> set[str]:
    """The shop's metric names an expression uses (the `shop_` prefix marks them)."""
    return set(re.findall(r"\bshop_[a-z0-9_]+", expression))


def _dashboard_expressions(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [e for child in node.values() for e in _dashboard_expressions(child)]
    if isinstance(node, list):
        return [e for child in node for e in _dashboard_expressions(child)]
    return []


def test_the_shipped_alert_rules_and_dashboard_name_only_metrics_that_exist(
    client, make_product, shopper, metrics_token
):
    make_product("MUG-001", on_hand=10)
    shopper.buys({"MUG-001": 1})
    shopper.buys({"MUG-001": 1}, pay_with="pm_sim_transient_error")
    exposed = {name for name, _ in scrape(client)}
    # Every family, by its own name and its samples' (_total, _bucket, _count, _sum),
    # the scrape-time ones included even when they have no sample now (no product low on stock).
    families = list(REGISTRY.collect()) + list(ShopFactsCollector().collect())
    known = exposed | {f.name for f in families} | {sample.name for f in families for sample in f.samples}
    # A counter no test has counted yet has no sample, but Prometheus will name it `<name>_total`.
    known |= {f"{f.name}_total" for f in families if f.type == "counter"}

    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    alert_exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((DEPLOY / "grafana" / "dashboard.json").read_text())
    panel_exprs = _dashboard_expressions(dashboard)

    assert len(alert_exprs) >= 5 and len(panel_exprs) >= 10
    named = set().union(*map(_metric_names_in, alert_exprs + panel_exprs))
    assert named, "the files name no shop metric"
    assert named - known == set()
    # And every family the shop records is on the dashboard.
    recorded = {f.name for f in families if f.name.startswith("shop_")}
    on_dashboard = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in _metric_names_in(" ".join(panel_exprs))}
    assert recorded - on_dashboard == set()


def test_an_order_placed_twice_with_one_key_is_counted_once(api, make_product):
    make_product("MUG-001", on_hand=10)
    counts = Counts(s("shop_orders_placed_total", currency="USD"))
    body = {"email": "a@example.com", "lines": [{"sku": "MUG-001", "quantity": 1}], "payment_method": "pm_card_visa"}

    for _ in range(2):
        assert api.post("/api/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1").status_code in (200, 202)

    assert Order.objects.count() == 1
    assert counts.gained("shop_orders_placed_total", currency="USD") == 1


def test_with_metrics_off_nothing_is_recorded_and_metrics_is_not_found(tmp_path):
    code = (
        "from framework import metrics\n"
        "metrics.ORDERS_PLACED.labels('USD').inc()\n"
        "with metrics.RECEIPT_RENDER.time():\n    pass\n"
        "from django.test import Client\n"
        "result = [metrics.ENABLED, sorted(p.name for p in metrics.metrics_dir().iterdir()),"
        " Client().get('/metrics').status_code]"
    )
    assert in_fresh_process(tmp_path, {"METRICS_ENABLED": "0", "PROMETHEUS_MULTIPROC_DIR": ""}, code) == [
        False,
        [],
        404,
    ]
