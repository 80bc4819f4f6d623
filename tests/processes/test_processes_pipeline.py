"""The pipeline run as in production: a web server process and a real `qcluster`.

Orders are placed over HTTP and followed through their status URL; the steps run in the
cluster's worker processes, which a test may kill with SIGKILL. Runs on SQLite (a file
shared by the processes) and on PostgreSQL.
"""

import importlib
import os
import re
import secrets
import signal

import pytest
import requests
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from orders.models import Order, OrderEvent
from payments.models import Payment, SimulatedPaymentIntent
from receipts.models import Receipt
from tests.support.environment import ON_CI
from tests.support.invariants import assert_stock_invariants, stock_of
from tests.support.processes import pdf_text, wait_until_stale
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def transitions(body: dict) -> list[str]:
    return [event["to_state"] for event in body["history"] if event["to_state"]]


def test_an_order_placed_over_http_is_completed_by_a_real_cluster_with_a_receipt_and_one_email(shop, make_product):
    make_product("MUG-001", price="12.50", on_hand=5)
    make_product("TEE-002", price="20.00", on_hand=3)
    shop.start_web()
    shop.start_cluster()

    placed = shop.place_order([("MUG-001", 2), ("TEE-002", 1)], email="ada@example.com")
    assert placed["state"] == "VALIDATED"  # its stock reserved as it was accepted
    body = shop.wait_for_final_state(placed["reference"])

    assert body["state"] == "COMPLETED", body
    assert body["total"] == "45.00"
    assert transitions(body) == ["VALIDATED", "PAID", "CONFIRMED", "COMPLETED"]
    receipt = requests.get(body["receipt_url"], timeout=30)
    assert receipt.status_code == 200
    assert receipt.headers["Content-Type"] == "application/pdf"
    text = pdf_text(receipt.content)
    assert placed["reference"] in text
    assert re.search(r"MUG-001\s.*\b2\s+12\.50\s+25\.00", text), text
    assert re.search(r"TEE-002\s.*\b1\s+20\.00\s+20\.00", text), text
    assert re.search(r"Total\s+45\.00\s+USD", text), text
    emails = shop.emails()
    assert len(emails) == 1
    assert emails[0]["To"] == "ada@example.com"
    assert placed["reference"] in emails[0]["Subject"]
    assert stock_of("MUG-001").on_hand == 3
    assert_stock_invariants()
    assert not OrderEvent.objects.exclude(outcome="succeeded").exists()  # no step needed a retry


def test_a_cluster_killed_mid_payment_leaves_an_order_the_tick_completes_with_one_charge_once_its_lease_lapses(
    shop, make_product
):
    make_product("MUG-001", price="12.50", on_hand=5)
    shop.start_web()
    # The payment step's lease: every network try to the provider to its timeout, 3 x 2 + 5 s.
    shop.extra_env["STRIPE_TIMEOUT_SECONDS"] = "2"
    cluster = shop.start_cluster()

    # pm_sim_hang charges, then holds the worker before answering: the worker dies mid-step,
    # after the provider took the money and before the order recorded it.
    placed = shop.place_order([("MUG-001", 2)], payment_method="pm_sim_hang")
    reference = placed["reference"]
    wait_until(
        lambda: SimulatedPaymentIntent.objects.filter(
            idempotency_key=f"{reference}:authorize", status="requires_capture"
        ).exists(),
        message=f"the payment step never started:\n{shop.logs()}",
    )
    cluster.kill()
    assert Order.objects.get(reference=reference).state == "VALIDATED"

    shop.start_cluster()
    body = shop.wait_for_final_state(reference)  # nudged by the tick once the dead worker's lease lapsed

    assert body["state"] == "COMPLETED", body
    assert transitions(body) == ["VALIDATED", "PAID", "CONFIRMED", "COMPLETED"]
    intent = SimulatedPaymentIntent.objects.get(idempotency_key__startswith=reference)
    assert (intent.status, intent.amount_minor, intent.calls) == ("succeeded", 2500, 2)
    assert Payment.objects.get(order__reference=reference).status == "captured"
    assert Receipt.objects.filter(order__reference=reference).count() == 1
    assert len(list((shop.var_dir / "private").rglob("*.pdf"))) == 1
    assert len(shop.emails()) == 1
    stock = stock_of("MUG-001")
    assert (stock.on_hand, stock.reserved) == (3, 0)
    assert_stock_invariants()


def sweeper_schedule() -> Schedule:
    """The sweeper's Schedule row as migration orders/0002 writes it.

    Earlier tests on this database flushed every table, migration data included, so the
    migration's own function writes it again.
    """
    from django.apps import apps

    migration = importlib.import_module("orders.migrations.0002_sweeper_schedule")
    migration.schedule_sweeper(apps, None)
    return Schedule.objects.get(func="orders.tasks.sweep_stuck_orders")


def test_a_lost_queue_message_is_recovered_by_the_scheduled_sweeper(shop, make_product):
    sweeper = sweeper_schedule()
    assert (sweeper.schedule_type, sweeper.minutes, sweeper.repeats) == (Schedule.MINUTES, 1, -1)
    assert sweeper.next_run <= timezone.now()  # due
    make_product("MUG-001", price="12.50", on_hand=5)
    shop.start_web()

    placed = shop.place_order([("MUG-001", 1)])
    lost = OrmQ.objects.filter(key=shop.cluster_name)
    assert lost.count() == 1
    lost.delete()
    shop.start_cluster(PIPELINE_TICK_SECONDS="0")  # the backstop alone, as with the tick turned off
    wait_until_stale(placed["reference"])
    assert shop.order(placed["reference"])["state"] == "VALIDATED"  # nothing moves it without a nudge

    # What the cluster's guard does every 30 s: start the tasks of due schedules.
    from django_q.scheduler import scheduler

    scheduler()
    body = shop.wait_for_final_state(placed["reference"])

    assert body["state"] == "COMPLETED", body
    assert transitions(body) == ["VALIDATED", "PAID", "CONFIRMED", "COMPLETED"]
    assert SimulatedPaymentIntent.objects.filter(status="succeeded").count() == 1
    assert Receipt.objects.count() == 1
    assert len(shop.emails()) == 1
    sweeper.refresh_from_db()
    assert sweeper.next_run > timezone.now()  # rescheduled for the next minute


def redis_test_url() -> str:
    """The Redis database the broker test may use and empty; skipped locally without Redis."""
    import redis

    url = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_timeout=2).ping()
    except redis.RedisError as error:
        if ON_CI:
            pytest.fail(f"CI must run the Redis tests: {url} is unreachable ({error})")
        pytest.skip(f"needs Redis at {url} (set REDIS_TEST_URL)")
    return url


def test_an_order_completes_through_a_cluster_on_the_redis_broker(shop, make_product):
    import redis

    url = redis_test_url()
    # A queue name of its own: nothing left in the database by another run is taken for ours.
    shop.cluster_name = f"proc-tests-{secrets.token_hex(4)}"
    shop.extra_env["REDIS_URL"] = url
    make_product("MUG-001", price="12.50", on_hand=5)
    try:
        shop.start_web()
        shop.start_cluster()

        placed = shop.place_order([("MUG-001", 2)])
        body = shop.wait_for_final_state(placed["reference"])

        assert body["state"] == "COMPLETED", body
        assert transitions(body) == ["VALIDATED", "PAID", "CONFIRMED", "COMPLETED"]
        assert body["receipt_url"]
        assert len(shop.emails()) == 1
        assert not OrmQ.objects.exists()  # the database queue was never used
        assert OrderEvent.objects.filter(order__reference=placed["reference"], outcome="succeeded").count() == 5
    finally:
        shop.stop_all()
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(f"django_q:{shop.cluster_name}:*"):
            client.delete(key)


def test_a_cluster_whose_idle_workers_were_killed_still_completes_orders(shop, make_product):
    # An idle worker waits for a task holding the task queue's lock: killed, it took the lock
    # with it and every later worker waited forever (django-q2 #23; framework/cluster.py).
    make_product("MUG-001", price="12.50", on_hand=5)
    shop.start_web()
    cluster = shop.start_cluster(workers=2)
    for _ in range(2):  # both at once, twice: the second time on the queue the first one replaced
        killed = wait_until(lambda: len(pids := cluster.cluster_workers()) == 2 and pids)
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: len(pids := cluster.cluster_workers()) == 2 and not set(pids) & set(killed))  # noqa: B023

    placed = shop.place_order([("MUG-001", 1)])
    body = shop.wait_for_final_state(placed["reference"], timeout=20)

    assert body["state"] == "COMPLETED", body
    assert cluster.log().count("replacing the task queue") >= 2
    assert "Traceback" not in cluster.log()
