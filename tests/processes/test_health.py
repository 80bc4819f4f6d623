"""/health/live and /health/ready: what a load balancer or an operator's poller sees."""

from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from orders.models import Order
from staff.services import create_staff
from tests.support.processes import wait_until

TOKEN = "health-operator-token"


@pytest.fixture(autouse=True)
def _metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def ready(client, token: str | None = TOKEN) -> tuple[int, dict]:
    """/health/ready as an operator's poller reads it (the metrics token), or as anyone (None)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.get("/health/ready", headers=headers)
    return response.status_code, response.json()


def test_live_answers_without_asking_anything_behind_it(client):
    # No database for this test: a query would raise.
    response = client.get("/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_fails_naming_the_cluster_when_no_cluster_reports(client, db):
    status, body = ready(client)

    assert status == 503
    assert body["failing"] == ["cluster"]
    assert "no 'orders' cluster has reported" in body["checks"]["cluster"]["detail"]
    assert body["checks"]["database"]["ok"] and body["checks"]["receipt_storage"]["ok"]


def test_ready_fails_on_an_order_stuck_past_its_time_limit(client, settings, shopper, make_product, held_pipeline):
    settings.ORDER_TIME_LIMIT_SECONDS = 600
    make_product("MUG-001", on_hand=10)
    order = shopper.buys({"MUG-001": 1})
    Order.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(minutes=11))

    status, body = ready(client)

    assert status == 503
    assert "stuck_orders" in body["failing"]
    assert "1 VALIDATED, oldest untouched 66" in body["checks"]["stuck_orders"]["detail"]


def test_ready_fails_when_the_receipt_bucket_is_gone(client, db, local_aws, receipts_on_s3):
    """Against a real S3 API on loopback (tests/aws.py)."""
    assert ready(client)[1]["checks"]["receipt_storage"]["ok"]
    local_aws.client("s3").delete_bucket(Bucket=receipts_on_s3)

    status, body = ready(client)

    assert status == 503
    assert "receipt_storage" in body["failing"]
    assert "404" in body["checks"]["receipt_storage"]["detail"]


def test_ready_tells_an_anonymous_caller_its_status_and_nothing_of_the_machine(client, db, settings):
    for token in (None, "a-guess"):
        status, body = ready(client, token=token)

        assert status == 503
        assert body == {"status": "failing"}
        assert "checks" not in body and str(settings.VAR_DIR) not in str(body)


def test_ready_shows_its_checks_to_staff_who_may_open_the_monitoring_page(client, db):
    manager = create_staff("manager-on-call", "manager", email="on-call@shop.example").user
    clerk = create_staff("clerk-on-call", "clerk").user

    client.force_login(clerk)
    assert ready(client, token=None)[1] == {"status": "failing"}
    client.force_login(manager)
    assert ready(client, token=None)[1]["failing"] == ["cluster"]


@pytest.mark.slow
def test_a_killed_cluster_makes_ready_fail_naming_it_until_a_new_one_starts(shop):
    shop.extra_env.update(METRICS_TOKEN=TOKEN)
    url = shop.start_web()
    cluster = shop.start_cluster()

    def ready_status() -> tuple[int, dict]:
        response = requests.get(f"{url}/health/ready", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        return response.status_code, response.json()

    wait_until(
        lambda: ready_status()[0] == 200,
        timeout=15,
        message=lambda: f"ready never answered 200 with a cluster up: {ready_status()}",
    )

    cluster.kill()
    status, body = wait_until(lambda: (r := ready_status())[0] == 503 and r, timeout=15)
    assert body["failing"] == ["cluster"]
    assert shop.cluster_name in body["checks"]["cluster"]["detail"]

    shop.start_cluster()
    status, body = wait_until(lambda: (r := ready_status())[0] == 200 and r, timeout=15)
    assert body["status"] == "ok"
    assert "2 workers" in body["checks"]["cluster"]["detail"]
