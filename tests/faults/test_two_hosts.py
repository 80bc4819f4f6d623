"""Scale-out on two app hosts: each a gunicorn and a qcluster in a network namespace of its
own, pinned to one core, both on one PostgreSQL and one Redis broker. Shoppers go through a
load balancer that sends each request (a retry too) to the next host; one host is cut off
the network for 30 s in the middle of a run of orders. Nothing is lost, stuck or doubled,
the other host takes the orders meanwhile, and the cut host works again once it is back.

Needs root for `ip netns` (tests/support/hosts.py): skipped elsewhere, never on CI.
"""

import itertools
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.environment import ON_CI
from tests.support.faults import CONNECTION_FAILED, Shoppers, figures_of, scenario_size
from tests.support.hosts import AppHost, HostNetwork, netns_unavailable_reason, start_app_host
from tests.support.processes import Shop
from tests.support.servers import PrivatePostgres, PrivateRedis, server_directory

pytestmark = [pytest.mark.slow, pytest.mark.faults]

SKUS = ["MUG-001", "TEE-002", "CAP-003", "PEN-004"]
DATABASE = "orders"
CUT_SECONDS = 30
# Every accepted order is final this long after the link is back: TCP's retransmission
# backoff after 30 s of silence (up to ~30 s more before a stalled connection speaks again),
# a lapsed lease, a nudge, on a loaded 2-core machine.
RECOVERY_BUDGET = 90
# A request to the cut-off host never gets its SYN answered: the shopper's page gives up on it
# this soon and sends it again, which the balancer routes to the other host.
SHOPPER_TIMEOUT = 5
# The lines the pipeline logs (orders/transitions.py): the web server that accepted an order
# logs its first step, the cluster that finished it its last.
ACCEPTED_LINE = re.compile(r"order (\S+) PENDING -> VALIDATED")
COMPLETED_LINE = re.compile(r"order (\S+) \S+ -> COMPLETED")


class RoundRobin:
    """A load balancer in front of the hosts, as each shopper meets it: every request, a retry
    after a lost connection too, goes to the next host."""

    def __init__(self, urls: list[str]):
        self.urls = urls
        self._turns = threading.local()
        self._first_turns = itertools.count()

    def __call__(self) -> str:
        # Each shopper thread starts on the next host, so both take load from the first order.
        turn = getattr(self._turns, "next", None)
        if turn is None:
            turn = next(self._first_turns)
        self._turns.next = turn + 1
        return self.urls[turn % len(self.urls)]


@pytest.fixture
def network() -> Iterator[HostNetwork]:
    """Two namespaces on a bridge of this run's own, deleted afterwards whatever happened."""
    if reason := netns_unavailable_reason():
        if ON_CI:
            pytest.fail(f"CI runs as root and must run the two-host test: {reason}")
        pytest.skip(reason)
    with HostNetwork(hosts_wanted=2) as built:
        yield built


@pytest.fixture
def shared_servers(network) -> Iterator[tuple[PrivatePostgres, PrivateRedis]]:
    """The one PostgreSQL and the one Redis broker both hosts use, on the bridge's address."""
    with server_directory("hosts-postgres") as pg_dir, server_directory("hosts-redis") as redis_dir:
        postgres = PrivatePostgres(pg_dir, host=network.bridge_address)
        redis = PrivateRedis(redis_dir, host=network.bridge_address)
        try:
            postgres.start()
            redis.start()
            yield postgres, redis
        finally:
            redis.stop()
            postgres.stop(mode="immediate")


@pytest.fixture
def two_hosts(network, shared_servers, tmp_path) -> Iterator[tuple[Shop, list[AppHost]]]:
    """The shop migrated and stocked on the shared servers, then one app host per namespace."""
    postgres, redis = shared_servers
    # One VAR_DIR for both hosts: it stands in for the shared S3 bucket production keeps the
    # receipts in, so a receipt stored by one host is served by the other.
    shop = Shop(tmp_path, cluster_name=f"two_hosts_{network.n}")
    shop.extra_env.update(DATABASE_URL=postgres.create_database(DATABASE), REDIS_URL=redis.url())
    shop.manage("migrate", "--noinput")
    shop.manage("import_stock", str(_stock_file(tmp_path)))
    hosts: list[AppHost] = []
    try:
        for host in network.hosts:
            hosts.append(start_app_host(host, shop.env(), tmp_path))
        yield shop, hosts
    finally:
        for app_host in hosts:
            app_host.stop()
        for app_host in hosts:
            for process in app_host.processes():
                print(f"==== {process.log_path.name}\n{process.log()[-6000:]}")  # shown when the test failed


def _stock_file(folder: Path) -> Path:
    path = folder / "stock.csv"
    rows = "".join(f"{sku},Product {sku},9.50,USD,10000\n" for sku in SKUS)
    path.write_text("sku,name,price,currency,on_hand\n" + rows)
    return path


def accepted_on(app_host: AppHost) -> set[str]:
    """The orders this host's web server accepted, as its log tells."""
    return set(ACCEPTED_LINE.findall(app_host.web.log()))


def completed_on(app_host: AppHost) -> set[str]:
    """The orders this host's cluster took to COMPLETED, as its log tells."""
    return set(COMPLETED_LINE.findall(app_host.cluster.log()))


def test_two_app_hosts_share_the_orders_and_one_cut_off_for_30_s_loses_stalls_and_doubles_nothing(
    two_hosts, network, report_fault
):
    shop, hosts = two_hosts
    cut_host, other = hosts
    shoppers = Shoppers(
        RoundRobin([app_host.url for app_host in hosts]),
        SKUS,
        scenario_size(full=200, bounded=60),
        per_second=scenario_size(full=3, bounded=1.2),
        timeout=SHOPPER_TIMEOUT,
    ).start()
    shoppers.wait_for_placed(10)

    network.cut(cut_host.host)
    placed_before_cut = len(shoppers.placed)
    try:
        # The fault's length, not a wait for a condition: the link stays down this long.
        time.sleep(CUT_SECONDS)
        placed_during_cut = len(shoppers.placed) - placed_before_cut
    finally:
        network.restore(cut_host.host)
    accepted_before_restore, completed_before_restore = accepted_on(cut_host), completed_on(cut_host)
    shoppers.join()
    fault_over = time.monotonic()

    figures = figures_of(
        f"two app hosts, one cut off the network for {CUT_SECONDS} s",
        shoppers,
        shop,
        recovery_budget=RECOVERY_BUDGET,
        fault_over_at=fault_over,
        base_url=other.url,
    )
    report_fault(figures)
    figures.assert_held()
    assert figures.states == {"COMPLETED": figures.orders}
    assert figures.orders == shoppers.count and figures.given_up == 0
    # Shoppers felt the cut (requests that never got an answer) and the other host kept
    # taking orders while one was unreachable.
    assert shoppers.answers[CONNECTION_FAILED] > 0, f"no request was lost to the cut: {shoppers.answers}"
    assert placed_during_cut >= 5, f"only {placed_during_cut} orders accepted during the cut"
    # Both clusters took orders from the one queue, and between them completed every order;
    # orders accepted by one host were finished by the other.
    accepted, completed = [accepted_on(h) for h in hosts], [completed_on(h) for h in hosts]
    crossed = [len(accepted[i] & completed[1 - i]) for i in (0, 1)]
    print(
        f"answers {dict(shoppers.answers)}; accepted per host {[len(a) for a in accepted]}, completed per host "
        f"{[len(c) for c in completed]}, accepted by one and completed by the other {crossed}"
    )
    assert all(completed), f"orders completed per host: {[len(c) for c in completed]}"
    assert set().union(*completed) == set(shoppers.placed) == set().union(*accepted)
    assert sum(crossed) > 0, "no order accepted by one host was completed by the other"
    # Once its link was back, the cut host took orders and finished orders again.
    assert accepted_on(cut_host) - accepted_before_restore, "the cut host accepted nothing after its link came back"
    assert completed_on(cut_host) - completed_before_restore, "the cut host's cluster finished nothing afterwards"
