"""The fault suite, part two: the servers the shop stands on go away while shoppers place
orders over HTTP. PostgreSQL crashes and restarts, or stops for a while and comes back;
Redis, the task broker, restarts and forgets every message it held.

The shop runs on private servers of the test's own (tests/support/servers.py), never the
machine's shared ones. While PostgreSQL is away the only 5xx a shopper may see is a 503 with
a JSON body (the shop page retries it under the same Idempotency-Key); afterwards the audit
finds nothing, no accepted order is lost, stuck or doubled, and every one is final within
the stated budget once the server is back and the last order placed (the shoppers keep
coming through the fault).

Each scenario prints one line of figures (tests/support/faults.py); `make faults` runs them
at full size (FAULT_PROFILE=full), CI runs the bounded profile.
"""

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import redis

from tests.support.faults import CONNECTION_FAILED, Shoppers, figures_of, scenario_size
from tests.support.processes import Shop
from tests.support.servers import PrivatePostgres, PrivateRedis
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.faults]

SKUS = ["FAULT-MUG", "FAULT-TEE", "FAULT-CAP", "FAULT-PEN"]
ORDERS = scenario_size(full=200, bounded=60)
PACE = 3  # new orders a second, over every shopper
# How long PostgreSQL stays stopped in the outage scenario.
OUTAGE_SECONDS = scenario_size(full=20, bounded=10)
# Every accepted order is final this long after the server is back and the last order was
# placed: the cluster's pusher back after a failed dequeue, a nudge after
# ORDER_NUDGE_AFTER_SECONDS (5 s), and the orders shoppers sent again in a rush once it was
# back worked through (more after the full profile's longer outage), on a loaded 2-core
# machine. Under a payment step's lease (STRIPE_TIMEOUT_SECONDS x 3 + 5 = 65 s) either way:
# an order whose attempt the outage cut short must not wait for its lease to lapse.
RECOVERY_BUDGET = scenario_size(full=45, bounded=30)
# Redis's scenario places its orders faster than two workers finish them, so that messages
# wait in Redis when it restarts; fewer at full size, or it would measure the cluster's pace.
REDIS_ORDERS = scenario_size(full=120, bounded=60)
REDIS_BURST = 12  # orders a second
# With Redis back in well under a second, the lost messages' orders are nudged by the next
# ticks (ORDER_NUDGE_AFTER_SECONDS plus the backlog's age); the burst's own backlog, still
# being worked through when the last order is placed, takes most of this.
REDIS_RECOVERY_BUDGET = scenario_size(full=60, bounded=30)
ONLY_503 = frozenset({503})


def catalog_csv(directory: Path) -> Path:
    """A catalog for `manage.py import_stock` that never runs out during a scenario."""
    path = directory / "fault-catalog.csv"
    rows = "".join(f"{sku},Fault item {sku},9.50,USD,10000\n" for sku in SKUS)
    path.write_text("sku,name,price,currency,on_hand\n" + rows)
    return path


@pytest.fixture
def shop_on_private_postgres(private_postgres: PrivatePostgres, shop: Shop, tmp_path: Path) -> Shop:
    """The shop's processes on a database of a private PostgreSQL, migrated and stocked
    through the shop's own commands (the test process's database is not the shop's here).

    `private_postgres` comes first so that it is stopped last, after every shop process."""
    shop.extra_env["DATABASE_URL"] = private_postgres.create_database("shop")
    shop.manage("migrate", "--noinput")
    shop.manage("import_stock", str(catalog_csv(tmp_path)))
    return shop


def run_with(
    shop: Shop, fault: Callable[[Shoppers], None], *, orders: int = ORDERS, per_second: float = PACE
) -> tuple[Shoppers, float]:
    """Start the web server and cluster, let a third of the orders in, break something with
    `fault(shoppers)`, let the shoppers finish; returns them and the moment the recovery
    budget counts from: the fault over and the last order placed."""
    shop.start_web(workers=2)
    shop.start_cluster(workers=2)
    shoppers = Shoppers(lambda: shop.url, SKUS, orders, per_second=per_second).start()
    shoppers.wait_for_placed(orders // 3)
    fault(shoppers)
    shoppers.join()
    return shoppers, time.monotonic()


def test_postgres_crashing_and_restarting_mid_run_loses_stalls_and_doubles_nothing(
    shop_on_private_postgres, private_postgres, report_fault
):
    shop = shop_on_private_postgres

    shoppers, fault_over = run_with(shop, lambda _: private_postgres.restart(mode="immediate"))

    figures = figures_of(
        "PostgreSQL crashed and restarted (immediate)",
        shoppers,
        shop,
        recovery_budget=RECOVERY_BUDGET,
        fault_over_at=fault_over,
    )
    report_fault(figures)
    figures.assert_held(allowed_server_errors=ONLY_503)
    assert figures.states == {"COMPLETED": figures.orders}


def test_postgres_stopped_for_seconds_mid_run_answers_only_json_503s_and_every_order_ends_after_it_is_back(
    shop_on_private_postgres, private_postgres, report_fault
):
    shop = shop_on_private_postgres
    during_outage: Counter[int] = Counter()

    def outage(shoppers: Shoppers) -> None:
        private_postgres.stop(mode="fast")
        before = Counter(dict(shoppers.answers))  # dict(): one copy under the GIL, as threads count
        time.sleep(OUTAGE_SECONDS)  # the outage itself: the server stays down this long
        during_outage.update(Counter(dict(shoppers.answers)) - before)
        private_postgres.start()

    shoppers, fault_over = run_with(shop, outage)

    figures = figures_of(
        f"PostgreSQL stopped for {OUTAGE_SECONDS} s",
        shoppers,
        shop,
        recovery_budget=RECOVERY_BUDGET,
        fault_over_at=fault_over,
    )
    report_fault(figures)
    figures.assert_held(allowed_server_errors=ONLY_503)
    # The shop kept answering while its database was away, and only with "try again" (or
    # the 202 of an order it had taken just before). A request may also go unanswered: the
    # shoppers' 2 s wait after a 503 meets gunicorn's 2 s keep-alive, and a request sent on a
    # connection the server is closing is reset (the shopper sends it again).
    assert during_outage[503] > 0, during_outage
    assert set(during_outage) <= {202, 503, CONNECTION_FAILED}, during_outage
    assert figures.states == {"COMPLETED": figures.orders}


def test_an_order_whose_payment_the_outage_cut_short_is_final_seconds_after_postgres_is_back_not_after_its_lease(
    shop_on_private_postgres, private_postgres
):
    shop = shop_on_private_postgres
    url = shop.extra_env["DATABASE_URL"]
    shop.start_web()
    shop.start_cluster(workers=1)
    # The payment attempt is held inside the gateway's book (after its lease is stamped) by a
    # lock the test takes, so the outage is sure to cut this attempt short.
    holder = psycopg.connect(url)
    holder.execute("LOCK TABLE payments_simulatedpaymentintent IN ACCESS EXCLUSIVE MODE")
    try:
        reference = shop.place_order([(SKUS[0], 1)])["reference"]
        with psycopg.connect(url, autocommit=True) as watcher:
            wait_until(
                lambda: watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                ).fetchone()[0],
                timeout=30,
                message="no worker came to pay the order",
            )
        private_postgres.stop(mode="fast")  # the held attempt's connection is cut
    finally:
        holder.close()
    time.sleep(3)  # the outage itself
    private_postgres.start()
    back = time.monotonic()

    body = shop.wait_for_final_state(reference, timeout=20)

    assert body["state"] == "COMPLETED"
    # Well under the payment step's lease (65 s): the worker ran the attempt again itself.
    assert time.monotonic() - back < 20


# The cluster is frozen mid-run on purpose; on SQLite, whose one writer locks the whole file,
# a worker frozen inside a step's transaction would stop every order, whatever the broker.
@pytest.mark.requires_postgres
def test_redis_restarted_mid_run_on_the_redis_broker_loses_no_order_and_all_end_within_seconds(
    private_redis: PrivateRedis, shop, make_product, report_fault
):
    for sku in SKUS:
        make_product(sku, price="9.50", on_hand=10_000)
    shop.extra_env["REDIS_URL"] = private_redis.url()
    queue = redis.Redis.from_url(private_redis.url())
    queue_key = f"django_q:{shop.cluster_name}:q"  # django-q's Redis list of the cluster's messages
    dropped: list[int] = []

    def restart_with_messages_queued(shoppers: Shoppers) -> None:
        # Only a restart that drops queued messages proves anything: the cluster is frozen
        # until orders have queued some, so there is a backlog however fast it would be.
        [cluster] = [process for process in shop.processes if process.name == "qcluster"]
        cluster.pause()
        try:
            wait_until(lambda: queue.llen(queue_key) >= 10, timeout=60, message="no messages queued in Redis")
            dropped.append(queue.llen(queue_key))
            private_redis.restart()
        finally:
            cluster.resume()

    shoppers, fault_over = run_with(shop, restart_with_messages_queued, orders=REDIS_ORDERS, per_second=REDIS_BURST)

    figures = figures_of(
        f"Redis restarted with {dropped[0]} messages queued (Redis broker)",
        shoppers,
        shop,
        recovery_budget=REDIS_RECOVERY_BUDGET,
        fault_over_at=fault_over,
    )
    report_fault(figures)
    figures.assert_held()
    assert figures.states == {"COMPLETED": figures.orders}
