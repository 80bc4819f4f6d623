"""The fault suite, part one: the shop's own processes die or its side services fail while
shoppers place orders over HTTP. After each scenario the product's audit finds nothing,
every accepted order is final within the stated time, and no shopper saw a 5xx.

Each scenario prints one line of figures (tests/support/faults.py); `make faults` runs them
at full size (FAULT_PROFILE=full), CI runs the bounded profile.
"""

import contextlib
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from payments.models import Payment
from tests.support.faults import Shoppers, figures_of, scenario_size
from tests.support.processes import Shop
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.faults]

SKUS = ["MUG-001", "TEE-002", "CAP-003", "PEN-004"]
# What a killed worker leaves its order waiting for, shortened so a scenario takes a minute:
# the payment step's lease is every network try to the provider to its timeout (3 x 2 + 5 s),
# and an email claimed by a worker that died mid-send is given up as uncertain (the order
# completes, flagged for a manager; it is never sent twice) once its claim is 10 s old.
KILLED_WORKER_WAITS = {"STRIPE_TIMEOUT_SECONDS": "2", "NOTIFICATION_CLAIM_SECONDS": "10"}
# Every accepted order is final this long after the fault ends: the longest lease a killed
# worker leaves behind (30 s, a receipt's or a file-backend email's), a nudge
# (ORDER_NUDGE_AFTER_SECONDS), the backlog the kills left, on a loaded 2-core machine.
RECOVERY_BUDGET = 90


@pytest.fixture
def stocked(make_product) -> None:
    """A catalog that never runs out during a scenario: every order can complete."""
    for sku in SKUS:
        make_product(sku, price="9.50", on_hand=10_000)


class Killer:
    """Kills at random moments (0.3 to 1.5 s apart) on a thread until stopped, or until it
    made `max_kills` kills."""

    def __init__(self, kill_one, seed: int = 15, max_kills: int | None = None):
        self.kill_one = kill_one
        self.max_kills = max_kills
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
        while self.kills != self.max_kills and not self._stop.wait(self.random.uniform(0.3, 1.5)):
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


def captured_payments() -> int:
    return Payment.objects.filter(status=Payment.Status.CAPTURED).count()


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
        shop,
        recovery_budget=RECOVERY_BUDGET,
        fault_over_at=fault_over,
    )
    report_fault(figures)
    figures.assert_held()
    assert killer.kills >= 3
    assert figures.states == {"COMPLETED": figures.orders}


GUNICORN_KILLS = scenario_size(full=30, bounded=12)


def test_gunicorn_workers_killed_during_a_burst_of_placements_answer_no_5xx_and_place_nothing_twice(
    shop, stocked, report_fault
):
    shop.start_web(workers=3, threads=4)
    [server] = [p for p in shop.processes if p.name == "web"]
    shop.start_cluster(workers=2)
    # Paced so the burst outlasts the killer's first three kills (2.96 s into it, seed 15)
    # however fast the shop answers.
    shoppers = Shoppers(
        lambda: shop.url, SKUS, scenario_size(full=200, bounded=100), concurrency=8, per_second=20
    ).start()

    def kill_workers(chance: random.Random) -> bool:
        # Every worker, while a shopper's request is on its way: one worker picked at random
        # was often idle at that moment, and five kills then cost no request its answer.
        try:
            wait_until(lambda: shoppers.in_flight, timeout=2, interval=0.005)
        except AssertionError:
            return False
        workers = server.children()
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker, signal.SIGKILL)  # the master starts others
        return bool(workers)

    # A bounded number of kills: a worker killed about every second never outlives its own
    # start on a loaded machine (CI's image build beside it), and the burst then never ends.
    with Killer(kill_workers, max_kills=GUNICORN_KILLS) as killer:
        shoppers.join()
    figures = figures_of(
        f"kill -9 of gunicorn workers during a burst ({killer.kills} kills)",
        shoppers,
        shop,
        recovery_budget=RECOVERY_BUDGET,
        fault_over_at=time.monotonic(),
    )
    report_fault(figures)
    figures.assert_held()
    assert killer.kills >= 3 and shoppers.answers[0] > 0  # some requests did lose their worker
    assert figures.states == {"COMPLETED": figures.orders}


# A side service's outage in the bounded profile (CI) and at full size (`make faults`).
OUTAGE_SECONDS = scenario_size(full=60, bounded=15)


def run_through_an_outage(shop: Shop, shoppers: Shoppers, *, go_down, come_back) -> tuple[float, int]:
    """Break a side service a few orders into the run, for OUTAGE_SECONDS, then mend it; the
    time it came back, and how many payments were captured while it was down."""
    shoppers.wait_for_placed(10)
    go_down()
    captured_before = captured_payments()
    time.sleep(OUTAGE_SECONDS)  # the outage itself: its length is the scenario
    captured_during = captured_payments() - captured_before
    come_back()
    shoppers.join()
    return time.monotonic(), captured_during


@dataclass
class ReceiptStorage:
    """Where the shop's receipts go, how the test breaks and mends it, and what it holds."""

    name: str
    go_down: Callable[[], None]
    come_back: Callable[[], None]
    stored: Callable[[], list[bytes]]


@pytest.fixture
def receipt_storage(shop) -> ReceiptStorage:
    """The shop's receipts on local files, and a way to break and mend them. (S3's outage,
    with its breaker, is the providers' scenario: tests/faults/test_faults_providers.py.)"""
    receipts, put_aside = shop.var_dir / "private", shop.var_dir / "private-away"

    def go_down() -> None:
        receipts.mkdir(exist_ok=True)
        receipts.rename(put_aside)
        receipts.write_text("not a folder: every receipt store fails")

    def come_back() -> None:
        receipts.unlink()
        put_aside.rename(receipts)

    return ReceiptStorage(
        "local files", go_down, come_back, lambda: [path.read_bytes() for path in receipts.rglob("*.pdf")]
    )


def test_receipt_storage_down_and_back_keeps_payments_flowing_and_stores_every_receipt_whole(
    shop, stocked, receipt_storage, report_fault
):
    shop.start_web()
    shop.start_cluster(workers=2)
    shoppers = Shoppers(lambda: shop.url, SKUS, scenario_size(full=200, bounded=80), per_second=3).start()

    back_at, captured_during = run_through_an_outage(
        shop, shoppers, go_down=receipt_storage.go_down, come_back=receipt_storage.come_back
    )
    figures = figures_of(
        f"receipt storage ({receipt_storage.name}) down {OUTAGE_SECONDS} s ({captured_during} payments meanwhile)",
        shoppers,
        shop,
        recovery_budget=RECOVERY_BUDGET,
        fault_over_at=back_at,
    )
    report_fault(figures)
    figures.assert_held()
    assert figures.states == {"COMPLETED": figures.orders}
    # A side step's outage never stalls sales: the workers took payments all along.
    assert captured_during >= OUTAGE_SECONDS  # at least one a second, of about three placed
    stored = receipt_storage.stored()
    assert len(stored) == figures.orders and all(pdf.startswith(b"%PDF") and b"%%EOF" in pdf[-1024:] for pdf in stored)


def test_stripe_errors_timeouts_and_a_cluster_killed_during_a_hang_charge_each_order_once(
    shop, stocked, fake_stripe, report_fault
):
    from tests.support.fake_stripe import WEBHOOK_SECRET

    fake_stripe.hang_seconds = 10  # well past the client's timeout: the answer is lost
    shop.extra_env.update(
        KILLED_WORKER_WAITS,
        PAYMENT_GATEWAY="stripe",
        STRIPE_SECRET_KEY=fake_stripe.api_key,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_API_BASE=fake_stripe.url,
        STRIPE_MAX_NETWORK_RETRIES="1",  # the SDK tries again under the same idempotency key
    )
    shop.start_web()
    cluster = shop.start_cluster(workers=2)
    shoppers = Shoppers(lambda: shop.url, SKUS, scenario_size(full=200, bounded=60), per_second=3).start()

    shoppers.wait_for_placed(5)
    fake_stripe.fail_next("create_intent", status=500, times=4)
    fake_stripe.fail_next("capture_intent", status=503, times=3)
    fake_stripe.hang_next("capture_intent", times=3)
    shoppers.wait_for_placed(20)
    hanging_from = len(fake_stripe.calls_of("create_intent"))
    fake_stripe.hang_next("create_intent", times=2)
    # The charge is made and its answer held back: kill every worker waiting on it.
    wait_until(lambda: len(fake_stripe.calls_of("create_intent")) > hanging_from, timeout=30)
    cluster.kill()
    shop.start_cluster(workers=2)
    shoppers.join()

    figures = figures_of(
        "Stripe 5xx, timeouts and hangs, the cluster killed mid-hang",
        shoppers,
        shop,
        recovery_budget=RECOVERY_BUDGET,
        fault_over_at=time.monotonic(),
    )
    report_fault(figures)
    figures.assert_held()
    assert figures.states == {"COMPLETED": figures.orders}
    replayed = [call for call in fake_stripe.calls if call.replayed]
    assert replayed  # answers lost and asked again under the same key, never charged twice
    # The fixture then checks Stripe's book against the shop's: one intent per order, each
    # completed order's total captured.
