"""The database cache's table keeps its live entries only: the rate limits' counters of
windows gone by are deleted by a schedule, which Django would do only past MAX_ENTRIES."""

import pytest
from django.core.cache import caches
from django.db import connection

from framework import cache_tables, tasks

DATABASE_CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_cache"},
    "queue_status": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_q_status"},
}


@pytest.fixture
def database_caches(db, settings):
    settings.CACHES = DATABASE_CACHES
    for alias in DATABASE_CACHES:
        caches[alias].clear()
    yield {alias: caches[alias] for alias in DATABASE_CACHES}
    for alias in DATABASE_CACHES:
        caches[alias].clear()


def rows(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")
        return cursor.fetchone()[0]


def test_the_schedule_deletes_every_database_caches_expired_entries_and_keeps_the_live_ones(
    database_caches, monkeypatch
):
    monkeypatch.setattr(cache_tables, "DELETE_BATCH", 3)  # several batches, the last one short
    counters, status = database_caches["default"], database_caches["queue_status"]
    for n in range(7):
        counters.add(f"placement:10.0.0.{n}:29999", n + 1, -10)  # a window long gone
    counters.add("placement:10.0.0.1:30000", 4, 120)
    counters.add("breaker:stripe", "open", 300)
    status.add("cluster-gone", "stopped", -10)
    status.add("cluster-up", "working", 60)

    assert cache_tables.delete_expired_cache_entries() == 8

    assert rows("django_cache") == 2 and rows("django_q_status") == 1
    assert counters.get("placement:10.0.0.1:30000") == 4 and counters.get("breaker:stripe") == "open"
    assert status.get("cluster-up") == "working"


def test_the_task_deletes_nothing_when_nothing_expired(database_caches):
    database_caches["default"].add("breaker:stripe", "open", 300)

    tasks.delete_expired_cache_entries()

    assert database_caches["default"].get("breaker:stripe") == "open"
