"""Scenario 8: completed orders/s through one app host and through two.

Each app host is a gunicorn and a qcluster in a network namespace of its own, pinned to one
core with taskset (tests/support/hosts.py builds them, for this and for the two-host test);
both hosts share one PostgreSQL and one Redis broker, private servers listening on the
bridge's address. The same load is offered to one host, then split between two (one wrk per
host, as a balancer would), more than one host can take; what the pipeline completes per
second is measured once every order sent has finished, the median of `BENCH_REPEATS` runs
per side, and the ratio two/one comes from the same run.

    python -m bench.scale_out            # this scenario alone, full size (prints its JSON)
    BENCH_QUICK=1 python -m bench.scale_out

Needs root (`ip netns`): elsewhere the scenario is recorded as skipped, with the reason; on
CI (CI=true) that is a failure.
"""

import json
import os
import shutil
import statistics
import sys
import threading
from pathlib import Path

from bench.database import Db
from bench.load_tools import run_wrk
from bench.log import log
from bench.plan import Plan
from bench.stack import ROOT, BenchError, Stack, clean_workdir, stack_env
from tests.support.hosts import AppHost, HostNetwork, netns_unavailable_reason, start_app_host
from tests.support.servers import PrivatePostgres, PrivateRedis, server_directory

DATABASE = "orders_bench_scale_out"
# Per host, on its one core: the web server is a small share of an order's CPU (about 7 of
# 120 ms end to end), the cluster's two workers do the rest.
WEB_WORKERS, WEB_THREADS, CLUSTER_WORKERS = 2, 1, 2


def measure_scale_out(plan: Plan, workdir: Path) -> dict:
    """Completed orders/s with one pinned app host and with two, and their ratio."""
    if reason := netns_unavailable_reason():
        if os.environ.get("CI", "").lower() == "true":
            raise BenchError(f"scale-out: CI runs as root and must run this scenario: {reason}")
        log(f"scale-out: skipped ({reason})")
        return {"skipped": reason}
    clean_workdir(workdir)
    with (
        HostNetwork(hosts_wanted=2) as network,
        server_directory("bench-postgres") as pg_dir,
        server_directory("bench-redis") as redis_dir,
    ):
        postgres = PrivatePostgres(pg_dir, host=network.bridge_address)
        redis = PrivateRedis(redis_dir, host=network.bridge_address)
        try:
            postgres.start()
            redis.start()
            return _measure(plan, network, postgres, redis, workdir)
        finally:
            redis.stop()
            postgres.stop(mode="immediate")


def _measure(plan: Plan, network: HostNetwork, postgres: PrivatePostgres, redis: PrivateRedis, workdir: Path) -> dict:
    env = stack_env(DATABASE, workdir, "redis")
    # INFO: the hosts' start is seen in the cluster's log ("Q Cluster ... running").
    env.update(DATABASE_URL=postgres.create_database(DATABASE), REDIS_URL=redis.url(), LOG_LEVEL="INFO")
    Stack(env=env, workdir=workdir).manage("migrate", "--noinput")
    db = Db(DATABASE, server=postgres.url("").rstrip("/"), redis_url=redis.url())
    db.seed()
    rate, seconds = plan.scale_out_rate, plan.scale_out_seconds
    runs: dict[int, list[dict]] = {1: [], 2: []}
    hosts: list[AppHost] = []
    try:
        for count in (1, 2):
            while len(hosts) < count:
                host = network.hosts[len(hosts)]
                hosts.append(
                    start_app_host(
                        host, env, workdir, web_workers=WEB_WORKERS, threads=WEB_THREADS, cluster_workers=CLUSTER_WORKERS
                    )
                )
            _warm_up(db, hosts, plan)
            for _ in range(plan.repeats):
                runs[count].append(_run(db, hosts, plan, rate=rate, seconds=seconds))
    finally:
        for app_host in hosts:
            app_host.stop()
        db.conn.close()
    one, two = (statistics.median(run["completed_per_s"] for run in runs[n]) for n in (1, 2))
    result = {
        "offered_per_s": rate,
        "seconds": seconds,
        "host": {
            "web_workers": WEB_WORKERS,
            "web_threads": WEB_THREADS,
            "cluster_workers": CLUSTER_WORKERS,
            "cores": 1,
        },
        "one_host": {"completed_per_s": one, "runs": runs[1]},
        "two_hosts": {"completed_per_s": two, "runs": runs[2]},
        "ratio": round(two / one, 2) if one else 0.0,
    }
    log(f"scale-out: one host {one:.1f} completed/s, two hosts {two:.1f}/s: x{result['ratio']:.2f}")
    return result


def _warm_up(db: Db, hosts: list[AppHost], plan: Plan) -> None:
    """A few orders through every host first: the workers' first receipt loads the fonts."""
    _offer(db, hosts, rate=2.0 * len(hosts), seconds=1, plan=plan)
    db.reset()


def _offer(db: Db, hosts: list[AppHost], *, rate: float, seconds: float, plan: Plan) -> list[dict]:
    """Offer `rate` orders/s for `seconds`, split evenly between the hosts; wait until all are final."""
    db.reset()
    db.purge_queue("redis")
    loads: list[dict] = []
    errors: list[BaseException] = []

    def load(url: str) -> None:
        try:
            loads.append(run_wrk(url, connections=8, seconds=seconds, env={"BENCH_RATE": f"{rate / len(hosts):.2f}"}))
        except BaseException as error:  # noqa: BLE001 (raised again in the driver's thread)
            errors.append(error)

    threads = [threading.Thread(target=load, args=(app_host.url,)) for app_host in hosts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    db.wait_for_trailing_accepts()
    db.wait_until_settled("redis", plan.settle_timeout)
    return loads


def _run(db: Db, hosts: list[AppHost], plan: Plan, *, rate: float, seconds: float) -> dict:
    loads = _offer(db, hosts, rate=rate, seconds=seconds, plan=plan)
    stats = db.read_e2e_stats()
    if not stats["orders"] or stats["not_completed"]:
        states = db.all("SELECT state, failure_code, count(*) FROM orders_order GROUP BY 1, 2")
        raise BenchError(f"scale-out on {len(hosts)} host(s): not every order completed: {states}")
    log(
        f"scale-out, {len(hosts)} host(s): {stats['completed']} orders, {stats['completed_per_s']} completed/s "
        f"(offered {rate:.0f}/s for {seconds:.0f} s)"
    )
    return {
        "hosts": len(hosts),
        "accepted_per_s": round(sum(run["accepted_per_s"] for run in loads), 1),
        "errors": sum(run["errors"] for run in loads),
        **stats,
    }


def main() -> int:
    """This scenario alone: its JSON on stdout."""
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    plan = Plan.for_mode(quick, ["redis"])
    workdir = ROOT / "var" / f"bench-scale-out-{os.getpid()}"
    result = measure_scale_out(plan, workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"bench: FAILED: {error}", file=sys.stderr)
        sys.exit(1)
