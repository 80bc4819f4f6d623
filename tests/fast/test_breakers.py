"""The circuit breaker's state machine (framework/breakers.py), on a clock the test moves,
and its state shared by two cache clients as two processes would hold them."""

import os
import uuid

import pytest
from django.core.cache.backends.db import DatabaseCache
from django.core.cache.backends.redis import RedisCache
from django.core.management import call_command

from framework.breakers import BreakerState, CircuitBreaker
from tests.support.waiting import wait_until


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(autouse=True)
def _thresholds(settings):
    settings.BREAKER_FAILURES = 3
    settings.BREAKER_FAILURE_RATIO = 0.5
    settings.BREAKER_WINDOW_SECONDS = 30
    settings.BREAKER_COOL_DOWN_SECONDS = 10


def stripe_breaker(clock, cache=None) -> CircuitBreaker:
    return CircuitBreaker("stripe", cache=cache, clock=clock)


def half_open_breaker(clock, cache=None) -> CircuitBreaker:
    """A breaker opened by three failures, its cool-down over."""
    guard = stripe_breaker(clock, cache)
    for _ in range(3):
        guard.record_failure()
    clock.now += 10
    return guard


def test_a_breaker_opens_once_failures_reach_the_count(clock):
    guard = stripe_breaker(clock)

    opened = [guard.record_failure() for _ in range(4)]

    assert opened == [False, False, True, False]
    assert guard.read().state is BreakerState.OPEN
    assert not guard.may_call(guard.read(), probe_seconds=5)


def test_failures_a_minority_of_the_calls_keep_it_closed(clock):
    guard = stripe_breaker(clock)
    guard.record_failure()
    for _ in range(6):
        guard.record_success(guard.read())

    guard.record_failure()
    guard.record_failure()

    reading = guard.read()
    assert (reading.failures, reading.calls) == (3, 9)
    assert reading.state is BreakerState.CLOSED


def test_failures_spread_beyond_the_window_do_not_add_up(clock):
    guard = stripe_breaker(clock)
    for _ in range(2):
        guard.record_failure()
    clock.now += 31

    guard.record_failure()

    assert guard.read().state is BreakerState.CLOSED


def test_after_the_cool_down_one_caller_alone_takes_the_probe(clock):
    guard = half_open_breaker(clock)

    reading = guard.read()
    assert reading.state is BreakerState.HALF_OPEN
    assert [guard.may_call(reading, probe_seconds=5) for _ in range(3)] == [True, False, False]


def test_a_probe_that_fails_opens_it_for_another_cool_down(clock):
    guard = half_open_breaker(clock)
    assert guard.may_call(guard.read(), probe_seconds=5)

    guard.record_failure()

    assert guard.read().state is BreakerState.OPEN
    clock.now += 10
    assert guard.may_call(guard.read(), probe_seconds=5)  # the next probe, after the next cool-down


def test_a_probe_that_succeeds_closes_it_with_a_clean_window(clock):
    guard = half_open_breaker(clock)
    reading = guard.read()
    assert guard.may_call(reading, probe_seconds=5)

    assert guard.record_success(reading) is True

    after = guard.read()
    assert (after.state, after.failures) == (BreakerState.CLOSED, 0)
    guard.record_failure()
    assert guard.read().state is BreakerState.CLOSED


@pytest.mark.parametrize("probe_succeeds", [True, False], ids=["probe answered", "probe failed"])
def test_a_half_open_breaker_with_no_traffic_stays_half_open_until_its_one_probe_decides(clock, probe_succeeds):
    guard = half_open_breaker(clock)
    # Nobody calls for an hour: the failures that opened it leave the window, the cool-down
    # is long over, and still it neither closes by itself nor lets more than one call through.
    clock.now += 3600

    idle = guard.read()
    assert (idle.state, idle.failures) == (BreakerState.HALF_OPEN, 0)
    assert [guard.may_call(guard.read(), probe_seconds=5) for _ in range(3)] == [True, False, False]
    assert guard.read().state is BreakerState.HALF_OPEN

    if probe_succeeds:
        assert guard.record_success(idle) is True
        assert guard.read().state is BreakerState.CLOSED
        assert guard.may_call(guard.read(), probe_seconds=5)
    else:
        assert guard.record_failure() is False  # not a new opening: the same outage, a new cool-down
        assert guard.read().state is BreakerState.OPEN
        assert not guard.may_call(guard.read(), probe_seconds=5)
        clock.now += 10
        assert [guard.may_call(guard.read(), probe_seconds=5) for _ in range(2)] == [True, False]


def test_a_probe_whose_worker_died_frees_the_way_after_its_lease(clock):
    guard = half_open_breaker(clock, RedisCache(_redis_url(), {"KEY_PREFIX": uuid.uuid4().hex}))
    assert guard.may_call(guard.read(), probe_seconds=1)

    # The probe's key lapses on the cache's own clock.
    wait_until(lambda: guard.may_call(guard.read(), probe_seconds=1), timeout=5, message="the probe never lapsed")


def _redis_url() -> str:
    return os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")


def _two_redis_clients():
    prefix = uuid.uuid4().hex
    return RedisCache(_redis_url(), {"KEY_PREFIX": prefix}), RedisCache(_redis_url(), {"KEY_PREFIX": prefix})


def _two_database_clients():
    call_command("createcachetable", "breaker_test_cache", verbosity=0)
    return DatabaseCache("breaker_test_cache", {}), DatabaseCache("breaker_test_cache", {})


@pytest.mark.parametrize("clients", [_two_redis_clients, _two_database_clients], ids=["redis", "database"])
@pytest.mark.django_db
def test_two_processes_share_one_breaker(clock, clients):
    first, second = clients()
    here, there = stripe_breaker(clock, first), stripe_breaker(clock, second)

    for _ in range(2):
        here.record_failure()
    there.record_failure()

    assert here.read().state is BreakerState.OPEN
    assert there.read().state is BreakerState.OPEN
    clock.now += 10
    assert there.may_call(there.read(), probe_seconds=5)
    assert not here.may_call(here.read(), probe_seconds=5)
    assert there.record_success(there.read())
    assert here.read().state is BreakerState.CLOSED


@pytest.mark.django_db
def test_an_open_breaker_outlives_a_sales_worth_of_rate_limit_counters_in_the_database_cache(clock):
    from config.settings.cache import DATABASE_CACHE_OPTIONS

    call_command("createcachetable", "breaker_cull_test_cache", verbosity=0)
    shop_cache = DatabaseCache("breaker_cull_test_cache", {"OPTIONS": DATABASE_CACHE_OPTIONS})
    guard = stripe_breaker(clock, shop_cache)
    for _ in range(3):
        guard.record_failure()

    # A thousand shoppers' counters, each key sorting after the breaker's.
    shop_cache.set_many({f"throttle:{n:05d}": 1 for n in range(1000)}, timeout=60)

    assert guard.read().state is BreakerState.OPEN
