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
import time
from pathlib import Path

from bench.database import Db
from bench.load_tools import run_wrk
from bench.log import log
from bench.plan import Plan, quick_from_env
from bench.procfs import machine_busy_seconds, tree_cpu_seconds
from bench.stack import ROOT, BenchError, Stack, clean_workdir, stack_env
from tests.support.hosts import AppHost, Host, HostNetwork, netns_unavailable_reason, start_app_host
from tests.support.servers import PrivatePostgres, PrivateRedis, server_directory

DATABASE = "orders_bench_scale_out"
# Per host, on its one core: the web server is a small share of an order's CPU (about 7 of
# 120 ms end to end), the cluster's two workers do the rest.
SIZES = {"web_workers": 2, "threads": 1, "cluster_workers": 2}


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
    servers = [pid for pid in (postgres.pid, redis.pid) if pid]
    runs: dict[int, list[dict]] = {1: [], 2: []}
    first = second = None
    try:
        first = _start_host(network.hosts[0], env, workdir)
        # One side, then the other, in each round: whatever else the machine runs meanwhile
        # weighs on both sides alike. The second host's cluster must not run during the
        # one-host side (it would take from the shared queue): it is started for each round.
        for _ in range(plan.repeats):
            _warm_up(db, [first], plan)
            runs[1].append(_run(db, [first], servers, plan))
            second = _start_host(network.hosts[1], env, workdir)
            _warm_up(db, [first, second], plan)
            runs[2].append(_run(db, [first, second], servers, plan))
            second.stop()
            second = None
    finally:
        for app_host in (second, first):
            if app_host:
                app_host.stop()
        db.conn.close()
    one, two = (statistics.median(run["completed_per_s"] for run in runs[n]) for n in (1, 2))
    cost_one, cost_two = (statistics.median(run["hosts_cpu_ms_per_order"] for run in runs[n]) for n in (1, 2))
    result = {
        "offered_per_s": plan.scale_out_rate,
        "seconds": plan.scale_out_seconds,
        "host": {**SIZES, "cores": 1},
        "one_host": {"completed_per_s": one, "hosts_cpu_ms_per_order": cost_one, "runs": runs[1]},
        "two_hosts": {"completed_per_s": two, "hosts_cpu_ms_per_order": cost_two, "runs": runs[2]},
        "ratio": round(two / one, 2) if one else 0.0,
    }
    log(
        f"scale-out: one host {one:.1f} completed/s, two hosts {two:.1f}/s: x{result['ratio']:.2f}; "
        f"the hosts' CPU per order {cost_one:.0f} and {cost_two:.0f} ms"
    )
    return result


def _start_host(host: Host, env: dict[str, str], workdir: Path) -> AppHost:
    return start_app_host(host, env, workdir, **SIZES)


def _warm_up(db: Db, hosts: list[AppHost], plan: Plan) -> None:
    """A few orders through every host first: the workers' first receipt loads the fonts."""
    _offer(db, hosts, rate=2.0 * len(hosts), seconds=1, plan=plan)


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


def _cpu(hosts: list[AppHost], servers: list[int]) -> dict[str, float]:
    """CPU seconds so far: each host's processes (web and cluster), the servers, the machine."""
    shot = {f"host{i}": sum(tree_cpu_seconds(p.popen.pid) for p in h.processes()) for i, h in enumerate(hosts)}
    shot["servers"] = sum(tree_cpu_seconds(pid) for pid in servers)
    shot["machine"] = machine_busy_seconds()
    return shot


def _run(db: Db, hosts: list[AppHost], servers: list[int], plan: Plan) -> dict:
    rate, seconds = plan.scale_out_rate, plan.scale_out_seconds
    before, started = _cpu(hosts, servers), time.monotonic()
    loads = _offer(db, hosts, rate=rate, seconds=seconds, plan=plan)
    after, wall = _cpu(hosts, servers), time.monotonic() - started
    stats = db.read_e2e_stats()
    if not stats["orders"] or stats["not_completed"]:
        states = db.all("SELECT state, failure_code, count(*) FROM orders_order GROUP BY 1, 2")
        raise BenchError(f"scale-out on {len(hosts)} host(s): not every order completed: {states}")
    spent = {part: after[part] - before[part] for part in before}
    spent["wrk"] = sum(run["wrk_cpu_s"] for run in loads)
    spent["others"] = max(0.0, spent["machine"] - sum(v for k, v in spent.items() if k != "machine"))
    # Cores' worth of CPU each part had over the run (a pinned host can have at most 1.0).
    cores = {part: round(cpu / wall, 2) for part, cpu in spent.items()}
    log(
        f"scale-out, {len(hosts)} host(s): {stats['completed']} orders, {stats['completed_per_s']} completed/s "
        f"(offered {rate:.0f}/s for {seconds:.0f} s); cores used: {cores}"
    )
    hosts_cpu = sum(cpu for part, cpu in spent.items() if part.startswith("host"))
    return {
        "hosts": len(hosts),
        "accepted_per_s": round(sum(run["accepted_per_s"] for run in loads), 1),
        "errors": sum(run["errors"] for run in loads),
        "cores_used": cores,
        # What an order costs the app hosts: on a machine others share, the completed rate
        # follows the CPU the hosts were given; this says whether a second host adds cost.
        "hosts_cpu_ms_per_order": round(1000 * hosts_cpu / stats["completed"], 1),
        **stats,
    }


def main() -> int:
    """This scenario alone: its JSON on stdout."""
    plan = Plan.for_mode(quick_from_env(), ["redis"])
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
