"""Fail closed: a production install that forgot its gateway does not start, and the
simulated gateway's fault ids are nobody's to use unless a setting allows them."""

import time

from orders.models import Order
from tests.support.settings_probe import in_fresh_process, start_up_failure

PRODUCTION = {"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "x" * 50, "DJANGO_ALLOWED_HOSTS": "shop.example.com"}


def test_with_debug_off_the_app_refuses_to_start_until_the_payment_gateway_is_named(tmp_path):
    error = start_up_failure(tmp_path, PRODUCTION)

    assert error.startswith("django.core.exceptions.ImproperlyConfigured: PAYMENT_GATEWAY must be set")


def test_an_unknown_payment_gateway_refuses_to_start(tmp_path):
    error = start_up_failure(tmp_path, {**PRODUCTION, "PAYMENT_GATEWAY": "simulatd"})

    assert "Unknown PAYMENT_GATEWAY 'simulatd'" in error


def test_with_debug_off_a_named_simulated_gateway_starts_with_its_fault_ids_closed(tmp_path):
    settings = in_fresh_process(
        tmp_path,
        {**PRODUCTION, "PAYMENT_GATEWAY": "simulated"},
        "result = [settings.PAYMENT_GATEWAY, settings.PAYMENT_SIMULATED_FAULTS]",
    )

    assert settings == ["simulated", False]


def test_the_laptop_default_is_the_simulated_gateway_with_its_faults(tmp_path):
    settings = in_fresh_process(tmp_path, {}, "result = [settings.PAYMENT_GATEWAY, settings.PAYMENT_SIMULATED_FAULTS]")

    assert settings == ["simulated", True]


def test_without_the_faults_setting_a_hang_id_declines_at_once_instead_of_holding_a_worker(
    make_product, shopper, settings
):
    settings.PAYMENT_SIMULATED_FAULTS = False
    make_product("MUG-001", on_hand=5)

    started = time.monotonic()
    orders = [shopper.buys({"MUG-001": 1}, pay_with="pm_sim_hang") for _ in range(2)]
    took = time.monotonic() - started

    assert [Order.objects.get(pk=o.pk).state for o in orders] == ["PAYMENT_FAILED", "PAYMENT_FAILED"]
    assert {Order.objects.get(pk=o.pk).failure_code for o in orders} == {"invalid_payment_method"}
    assert took < 5  # was 2 x 60 s with both cluster workers stalled
    paying = shopper.buys({"MUG-001": 1})
    assert Order.objects.get(pk=paying.pk).state == "COMPLETED"


def test_with_the_faults_setting_the_fault_ids_still_work_for_tests_and_demos(make_product, shopper, settings):
    settings.PAYMENT_SIMULATED_FAULTS = True
    make_product("MUG-001", on_hand=5)

    order = shopper.buys({"MUG-001": 1}, pay_with="pm_sim_transient_error")

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert order.events.filter(step="process_payment", outcome="retrying").count() == 1
