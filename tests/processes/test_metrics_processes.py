"""/metrics counts what happened across real processes: three gunicorn workers take the
orders, a two-worker cluster runs their steps, and one scrape sums them all, exactly.
The cluster's JSON log lines carry the request id of the API call that queued the work."""

import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.ordering import post_order
from tests.support.processes import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.requires_postgres]

TOKEN = "process-test-token"
ORDERS, DECLINED = 12, 4
STEPS_OF_A_SALE = ("update_inventory", "generate_receipt", "send_notification")
STEPS_OF_A_DECLINE = ("refund_or_void", "send_failure_notification")


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    response = requests.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def payment(status: str, decline_code: str = "") -> tuple[str, tuple]:
    labels = (("decline_code", decline_code), ("provider", "simulated"), ("status", status))
    return ("shop_payment_outcomes_total", labels)


def expected_counts() -> dict[tuple[str, tuple], float]:
    sold = ORDERS - DECLINED
    expected = {
        ("shop_orders_placed_total", (("currency", "USD"),)): ORDERS,
        ("shop_orders_ended_total", (("currency", "USD"), ("state", "COMPLETED"))): sold,
        ("shop_orders_ended_total", (("currency", "USD"), ("state", "PAYMENT_FAILED"))): DECLINED,
        ("shop_order_completion_seconds_count", ()): sold,
        ("shop_step_attempts_total", (("outcome", "succeeded"), ("step", "process_payment"))): sold,
        ("shop_step_attempts_total", (("outcome", "failed"), ("step", "process_payment"))): DECLINED,
        ("shop_step_duration_seconds_count", (("step", "validate_order"),)): ORDERS,
        ("shop_step_duration_seconds_count", (("step", "process_payment"),)): ORDERS,
        payment("authorized"): sold,
        payment("captured"): sold,
        payment("declined", "generic_decline"): DECLINED,
        ("shop_receipts_rendered_total", ()): sold,
        ("shop_receipt_render_seconds_count", ()): sold,
        ("shop_emails_total", (("kind", "confirmation"), ("outcome", "sent"))): sold,
        ("shop_emails_total", (("kind", "failure"), ("outcome", "sent"))): DECLINED,
    }
    expected |= {("shop_step_duration_seconds_count", (("step", step),)): sold for step in STEPS_OF_A_SALE}
    expected |= {("shop_step_duration_seconds_count", (("step", step),)): DECLINED for step in STEPS_OF_A_DECLINE}
    return expected


def differences(samples: dict, expected: dict) -> dict:
    return {key: (samples.get(key, 0), want) for key, want in expected.items() if samples.get(key, 0) != want}


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def descendants(pid: int) -> list[int]:
    return [p for child in children(pid) for p in (child, *descendants(child))]


def test_counts_scraped_from_metrics_match_what_happened_across_three_web_and_two_cluster_workers(shop, make_product):
    make_product("MUG-001", price="12.50", on_hand=ORDERS)
    shop.extra_env.update(METRICS_TOKEN=TOKEN, LOG_FORMAT="json")
    cluster = shop.start_cluster(workers=2)
    url = shop.start_web(workers=3)
    web = shop.processes[-1]

    def place(n: int) -> dict:
        card = "pm_card_chargeDeclined" if n < DECLINED else "pm_card_visa"
        response = post_order(url, email=f"s{n}@example.com", pay_with=card, headers={"X-Request-ID": f"req-{n}"})
        assert response.status_code == 202, response.text
        return response.json()

    with ThreadPoolExecutor(6) as pool:  # at once, so that several web workers take orders
        placed = list(pool.map(place, range(ORDERS)))
    ends = [shop.wait_for_final_state(order["reference"])["state"] for order in placed]
    assert sorted(ends) == ["COMPLETED"] * (ORDERS - DECLINED) + ["PAYMENT_FAILED"] * DECLINED
    expected = expected_counts()
    # The failure emails go after the final state: wait for the last job, then count exactly.
    wait_until(lambda: not differences(scrape(url), expected), timeout=30, message="counts never matched")

    samples = scrape(url)
    assert differences(samples, expected) == {}
    assert sum(v for (name, _), v in samples.items() if name == "shop_step_retries_total") == 0
    assert all(v == 0 for (name, _), v in samples.items() if name == "shop_open_orders")
    assert samples[("shop_queue_depth", ())] == 0
    # Every step attempt is timed once: the histogram's counts add up to the attempts.
    attempts = sum(v for (name, _), v in samples.items() if name == "shop_step_attempts_total")
    timed = sum(v for (name, _), v in samples.items() if name == "shop_step_duration_seconds_count")
    every_step = sum(v for (name, _), v in expected.items() if name == "shop_step_duration_seconds_count")
    assert attempts == timed == every_step

    # The counts were made in several processes, each writing its own files.
    writers = {int(f.stem.rsplit("_", 1)[1]) for f in (shop.var_dir / "metrics").glob("counter_*.db")}
    web_workers = set(children(web.popen.pid))
    cluster_processes = set(descendants(cluster.popen.pid))
    assert len(writers) >= 3
    assert writers & web_workers and writers & cluster_processes

    # A web worker killed outright leaves its counts behind: the next scrape still has them.
    os.kill(children(web.popen.pid)[0], signal.SIGKILL)
    wait_until(lambda: len(children(web.popen.pid)) == 3, timeout=30)
    assert differences(scrape(url), expected) == {}

    # Every line of both is a JSON object; the cluster's carry the id of the request that placed the order.
    for process in (web, cluster):
        assert [line for line in process.log().splitlines() if not line.startswith("{")] == []
    lines = [json.loads(line) for line in cluster.log().splitlines()]
    first = placed[DECLINED]["reference"]
    steps = {line["step"] for line in lines if line["order"] == first and line["request_id"] == f"req-{DECLINED}"}
    assert {"process_payment", "send_notification"} <= steps
