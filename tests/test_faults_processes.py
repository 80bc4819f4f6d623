"""The fault suite, part one: the shop's own processes die or its side services fail while
shoppers place orders over HTTP. After each scenario the product's audit finds nothing,
every accepted order is final within the stated time, and no shopper saw a 5xx.

Each scenario prints one line of figures (tests/support/faults.py); `make faults` runs them
at full size (FAULT_PROFILE=full), CI runs the bounded profile.
"""

import os
import random
import signal
import threading
import time
from collections.abc import Callable

import pytest

from tests.support.faults import Shoppers, figures_of, scenario_size
from tests.support.processes import Shop

pytestmark = [pytest.mark.slow, pytest.mark.faults]

SKUS = ["MUG-001", "TEE-002", "CAP-003", "PEN-004"]
# What a killed worker leaves its order waiting for, shortened so a scenario takes a minute:
# the payment step's lease is every network try to the provider to its timeout (3 x 2 + 5 s),
# and an email claimed by a worker that died mid-send is given up as uncertain (the order
# completes, flagged for a manager; it is never sent twice) once its claim is 10 s old.
KILLED_WORKER_WAITS = {"STRIPE_TIMEOUT_SECONDS": "2", "NOTIFICATION_CLAIM_SECONDS": "10"}
# Every accepted order is final this long after the fault ends: a lapsed lease or claim, a
# nudge (ORDER_NUDGE_AFTER_SECONDS), a retry's backoff, with room for a loaded 2-core machine.
RECOVERY_BUDGET = 60


@pytest.fixture
def stocked(make_product) -> None:
    """A catalog that never runs out during a scenario: every order can complete."""
    for sku in SKUS:
        make_product(sku, price="9.50", on_hand=10_000)


class Killer:
    """Kills at random moments (0.3 to 1.5 s apart) on a thread until stopped."""

    def __init__(self, kill_one, seed: int = 15):
        self.kill_one = kill_one
        self.random = random.Random(seed)
        self.kills = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Killer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.wait(self.random.uniform(0.3, 1.5)):
            if self.kill_one(self.random):
                self.kills += 1


def kill_cluster_workers(shop: Shop, workers: int) -> Callable[[random.Random], bool]:
    """Start a cluster; each kill takes one worker with SIGKILL (its sentinel starts another),
    and every fifth kill takes the whole cluster, which is started again."""
    cluster = [shop.start_cluster(workers=workers)]

    def kill_one(chance: random.Random) -> bool:
        if chance.random() < 0.2:
            cluster[0].kill()
            cluster[0] = shop.start_cluster(workers=workers)
            return True
        pids = cluster[0].cluster_workers()
        if not pids:
            return False
        try:
            os.kill(chance.choice(pids), signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    return kill_one


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_cluster_workers_killed_at_random_during_a_run_of_orders_lose_stall_and_double_nothing(
    broker, shop, stocked, request, report_fault
):
    if broker == "redis":
        shop.extra_env["REDIS_URL"] = request.getfixturevalue("private_redis").url()
    shop.extra_env.update(KILLED_WORKER_WAITS)
    shop.start_web(workers=2)
    kill_one = kill_cluster_workers(shop, workers=2)
    shoppers = Shoppers(lambda: shop.url, SKUS, scenario_size(full=200, bounded=80), per_second=3).start()

    with Killer(kill_one) as killer:
        shoppers.join()
    fault_over = time.monotonic()

    figures = figures_of(
        f"kill -9 of cluster workers ({broker} broker, {killer.kills} kills)",
        shoppers,
        base_url=shop.url,
        env=shop.env(),
        emails=shop.emails,
        recovery_budget=RECOVERY_BUDGET,
        fault_over_at=fault_over,
    )
    report_fault(figures)
    figures.assert_held()
    assert killer.kills >= 3
    assert figures.states == {"COMPLETED": figures.orders}
