"""The facts operators watch (read by metrics, health, the monitoring page and alarms):
open orders per state with the oldest's age, the queue's backlog, products low on stock."""

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from framework.queue import Task, enqueue, queue_backlog
from inventory.selectors import products_low_on_stock
from orders.models import Order
from orders.selectors import open_orders_by_state


def test_open_orders_are_counted_per_state_with_the_age_of_the_oldest(shopper, make_product, held_pipeline):
    make_product("MUG-001", on_hand=10)
    first = shopper.buys({"MUG-001": 1})
    shopper.buys({"MUG-001": 1})
    Order.objects.filter(pk=first.pk).update(updated_at=timezone.now() - timedelta(minutes=7))

    open_orders = open_orders_by_state()

    assert set(open_orders) == {"VALIDATED"}
    assert open_orders["VALIDATED"].count == 2
    assert 7 * 60 <= open_orders["VALIDATED"].oldest_age_seconds < 8 * 60


def test_finished_orders_are_not_open(shopper, make_product):
    make_product("MUG-001", on_hand=10)
    shopper.buys({"MUG-001": 1})

    assert open_orders_by_state() == {}


def test_the_backlog_counts_queued_tasks_and_ages_the_oldest(shopper, make_product, held_pipeline):
    make_product("MUG-001", on_hand=10)
    assert queue_backlog().depth == 0

    shopper.buys({"MUG-001": 1})
    shopper.buys({"MUG-001": 1})

    backlog = queue_backlog()
    assert backlog.depth == 2
    assert 0 <= backlog.oldest_age_seconds < 60


def test_the_backlog_is_read_from_redis_when_the_queue_is_there(settings, monkeypatch):
    redis = pytest.importorskip("redis")
    from django_q.conf import Conf

    url = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url).ping()
    except redis.ConnectionError:
        if os.environ.get("CI", "").lower() == "true":
            raise
        pytest.skip(f"needs Redis at {url} (set REDIS_TEST_URL)")
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", url)
    monkeypatch.setattr(Conf, "BROKER_CLASS", None)
    monkeypatch.setattr(Conf, "CLUSTER_NAME", "facts-test")
    from framework.queue import broker

    broker().purge_queue()
    enqueue(Task.ADVANCE_ORDER, 1)
    enqueue(Task.ADVANCE_ORDER, 2)

    backlog = queue_backlog()
    broker().purge_queue()
    assert backlog.depth == 2
    assert 0 <= backlog.oldest_age_seconds < 60


def test_products_at_or_under_their_threshold_are_low_on_stock(make_product):
    make_product("MUG-001", on_hand=3)
    make_product("TEE-002", on_hand=50)
    make_product("CAP-003", on_hand=5)

    assert [(p.sku, p.available) for p in products_low_on_stock()] == [("MUG-001", 3), ("CAP-003", 5)]
