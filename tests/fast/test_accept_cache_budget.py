"""What accepting an order costs its shared cache (the rate limits' counts), as a budget a
change may lower but not silently raise: round trips and bytes each way on Redis, statements
on the database cache's table; and the same for the hundredth order of a window as for the
second (counts, not timings: bench/ measures the time)."""

import os

import pytest
from django.core.cache import caches
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tests.support import counting_cache
from tests.support.environment import requires_postgres
from tests.support.ordering import place
from tests.support.statements import ACCEPT_BUDGET, data_statements, synchronous_commit

# Two limits (address, email): one read of both limits' windows' counts (and the lapse marks),
# one pipelined increment.
REDIS_ROUND_TRIPS = 2
# Sent and received together: the keys named eight times (about 100 bytes each: prefix, scope,
# the sha256 of the email, the window), four counts and four replies back (909 when each limit read its own).
REDIS_BYTES = 1000
# One read of every entry, and one UPDATE per limit adding one to the count read (9 through
# the database cache's own incr: a read, a count, a read and a write, twice); on PostgreSQL
# both limits' in one statement.
DATABASE_CACHE_STATEMENTS = {"postgresql": 2, "sqlite": 3}

# Which event types have a webhook endpoint is read once before counting (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("subscriptions_read_once")

GENEROUS = {"order_placement_address": "100000/min", "order_placement_email": "100000/hour"}


@pytest.fixture
def clock(monkeypatch):
    """The throttles' clock held still: every order falls in one window."""
    from framework.throttling import RateThrottle

    monkeypatch.setattr(RateThrottle, "timer", lambda self: 1_800_000_030.0)


def place_numbered(api, n: int) -> None:
    """The n-th order of the window: one of three shoppers, its own Idempotency-Key."""
    # Not `placed()`: its read of the order would count against the budget measured around this.
    response = place(api, email=f"s{n % 3}@example.com", headers={"Idempotency-Key": f"budget-{n}"})
    assert response.status_code == 202, response.content


def test_accepting_an_order_costs_redis_three_round_trips_whatever_came_before_in_the_window(
    api, make_product, settings, clock, held_pipeline
):
    url = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/7")
    settings.CACHES = {
        "default": {
            "BACKEND": "framework.redis_cache.SharedClientRedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "budget",
            "OPTIONS": {"connection_class": counting_cache.CountingConnection},
        }
    }
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": GENEROUS}
    settings.HELD_UNITS_PER_CLIENT = 100_000
    caches["default"].clear()
    make_product("MUG-001", on_hand=1000)
    costs = []
    for n in range(100):
        before = counting_cache.snapshot()
        place_numbered(api, n)
        costs.append(counting_cache.snapshot().since(before))
    caches["default"].clear()

    second, hundredth = costs[1], costs[99]
    assert second.round_trips <= REDIS_ROUND_TRIPS, second
    assert second.bytes_sent + second.bytes_received <= REDIS_BYTES, second
    # Flat: DRF's throttles moved every earlier request's timestamp, 9 kB by the hundredth.
    assert hundredth.round_trips == second.round_trips
    total = lambda t: t.bytes_sent + t.bytes_received  # noqa: E731
    assert total(hundredth) <= total(second) + 16, (second, hundredth)  # the counts' digits only


def test_accepting_an_order_on_the_database_cache_stays_within_its_statements(
    api, make_product, settings, clock, held_pipeline
):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_cache"}
    }
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": GENEROUS}
    settings.HELD_UNITS_PER_CLIENT = 100_000
    caches["default"].clear()
    make_product("MUG-001", on_hand=1000)
    for n in range(20):
        place_numbered(api, n)

    with CaptureQueriesContext(connection) as accepted:
        place_numbered(api, 20)

    cache_statements = [q["sql"] for q in accepted.captured_queries if "django_cache" in q["sql"]]
    assert len(cache_statements) <= DATABASE_CACHE_STATEMENTS[connection.vendor], "\n".join(cache_statements)
    # The values written stay an integer's size, whatever the window holds.
    writes = [sql for sql in cache_statements if "INSERT" in sql.upper() or "UPDATE" in sql.upper()]
    assert writes and sum(len(sql) for sql in writes) < 800, writes
    shop_statements = [s for s in data_statements(accepted.captured_queries) if "django_cache" not in s]
    assert len(shop_statements) <= ACCEPT_BUDGET[connection.vendor], "\n".join(shop_statements)


def test_a_count_changed_since_it_was_read_still_gets_its_one_on_the_database_cache(db, settings):
    from framework.throttling import Charge, add_to_counters

    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_cache"}
    }
    cache = caches["default"]
    cache.clear()
    cache.add("window", 3, 60)
    with CaptureQueriesContext(connection) as charged:
        add_to_counters(cache, [Charge("window", 60, seen=3)])
    assert cache.get("window") == 4 and len(charged.captured_queries) == 1
    # Another request's charge came first: the count is not the one read, Django's incr adds the one.
    add_to_counters(cache, [Charge("window", 60, seen=3)])
    assert cache.get("window") == 5
    add_to_counters(cache, [Charge("first", 60)])
    assert cache.get("first") == 1
    cache.clear()


def test_the_first_order_of_a_window_is_counted_in_one_statement_on_postgresql(db, settings):
    # Django's own add counts the whole table first (which keeps every window's counters)
    # and reads the row in a transaction of its own: five round trips per counter.
    from framework.throttling import Charge, add_to_counters

    requires_postgres()
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_cache"}
    }
    cache = caches["default"]
    cache.clear()
    cache.add("lapsed", 7, -10)  # a counter of a window long gone: its row is still there
    cache.add("raced", 2, 60)  # another request's charge made it since this one read nothing

    with CaptureQueriesContext(connection) as charged:
        add_to_counters(cache, [Charge("address", 120), Charge("email", 7200), Charge("lapsed", 120)])
    assert len(charged.captured_queries) == 1, charged.captured_queries
    assert (cache.get("address"), cache.get("email"), cache.get("lapsed")) == (1, 1, 1)

    add_to_counters(cache, [Charge("raced", 60)])
    assert cache.get("raced") == 3
    cache.clear()


def test_a_count_is_committed_without_waiting_for_the_disk_but_never_a_transaction_around_it(
    transactional_db, settings
):
    # A count a database crash loses lets one request more through: not worth a WAL flush. A
    # charge inside a transaction must not make that transaction's commit unsynced.
    from framework.throttling import Charge, add_to_counters

    requires_postgres()
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_cache"}
    }
    cache = caches["default"]
    cache.clear()

    with CaptureQueriesContext(connection) as charged:
        add_to_counters(cache, [Charge("alone", 60), Charge("alone-too", 60)])
    assert "synchronous_commit" in charged.captured_queries[0]["sql"]
    assert synchronous_commit() == "on"  # for that statement's own transaction only

    with transaction.atomic():
        with CaptureQueriesContext(connection) as charged:
            add_to_counters(cache, [Charge("alone", 60, seen=1)])
        assert "synchronous_commit" not in charged.captured_queries[0]["sql"]
        assert synchronous_commit() == "on"
    assert (cache.get("alone"), cache.get("alone-too")) == (2, 1)
    cache.clear()
