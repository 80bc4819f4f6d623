"""`make bench`: the order path against this machine's own limits.

Brings up the stack of bench/stack.py on a fresh database, measures the scenarios of
BENCHMARKS.md against the ceilings measured in the same run (pgbench on the same
PostgreSQL, the receipt renderer alone), writes bench/results/<timestamp>.json and, in the
full mode, refreshes the generated part of BENCHMARKS.md.

    python -m bench.run            # full run (about half an hour)
    python -m bench.run --quick    # a few seconds per scenario: proves the harness works

Timings are reported, never asserted. The run fails (non-zero exit) only when the harness
or the system breaks: a process that does not start, no order accepted, an order that never
finishes, more units sold than were in stock.

This module is the orchestration only: the scenarios are in bench/scenarios.py, the load
tools in bench/load_tools.py, the meters in bench/meters.py, the database in
bench/database.py and the reporting in bench/report.py.
"""

import argparse
import os
import shutil
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench import backoffice_capacity, notify_commits, report
from bench.database import Db
from bench.log import log
from bench.machine import describe_machine, read_versions
from bench.plan import Plan, quick_from_env
from bench.scale_out import measure_scale_out
from bench.scenarios import (
    measure_accepts,
    measure_costs_over_data,
    measure_framework_floor,
    measure_hot_product,
    measure_idle_e2e,
    measure_metrics_overhead,
    measure_monitoring_page,
    measure_pgbench_ceilings,
    measure_receipt_ceiling,
    measure_sustained_e2e,
    web_stack,
)
from bench.stack import ROOT, BenchError, Stack, clean_workdir, drop_database, recreate_database, stack_env
from bench.webhooks_hanging import measure_webhooks_hanging


def run_broker(plan: Plan, workdir: Path, broker: str, ceilings: dict, db: Db) -> dict:
    """Every scenario against one broker's stack, started and stopped here."""
    result: dict = {"broker": broker}
    with web_stack(plan, db, workdir, broker) as ctx:
        stack, sampler = ctx.stack, ctx.sampler
        result["web"] = stack.web_config
        result["accept"] = measure_accepts(ctx)
        result["floor"] = measure_framework_floor(ctx)
        db.purge_queue(broker)
        db.reset()
        stack.start_cluster(plan.cluster_workers)
        sampler.cluster = stack.cluster
        result["cluster"] = {"workers": plan.cluster_workers}
        result["idle"] = measure_idle_e2e(ctx)
        render_ceiling = ceilings["receipts"]["ceiling_per_s"]
        # First as fast as the receipts could go (the pipeline's own ceiling shows as the
        # completed rate), then at a share of what it achieved, for latencies at a steady load.
        saturated = measure_sustained_e2e(ctx, 5.0 if plan.quick else render_ceiling, plan.saturate_seconds)
        steady = max(1.0, saturated["completed_per_s"] * plan.sustained_fraction)
        result["e2e"] = [saturated, measure_sustained_e2e(ctx, steady, plan.e2e_seconds)]
        result["hot"] = measure_hot_product(ctx)
        if plan.soak_orders and broker == plan.brokers[0]:
            flat = measure_costs_over_data(ctx, steady, soak_rate=max(1.0, saturated["completed_per_s"] * 0.7))
            result["soak"] = flat.pop("soak")
            result["flat"] = flat
        if broker == plan.brokers[0]:
            result["metrics"] = measure_metrics_overhead(ctx, rate=steady)
            result["webhooks_hanging"] = measure_webhooks_hanging(ctx, rate=steady)
        sampler.sample()
        result["memory"] = sampler.summarise()
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the plan of the mode asked for; write its results and, for a full run, BENCHMARKS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=quick_from_env())
    parser.add_argument("--brokers", default=os.environ.get("BENCH_BROKERS", "redis,orm"))
    parser.add_argument("--no-markdown", action="store_true", help="do not refresh BENCHMARKS.md")
    parser.add_argument("--keep-db", action="store_true", help="leave the run's database behind")
    args = parser.parse_args(argv)
    plan = Plan.for_mode(args.quick, [b for b in args.brokers.split(",") if b])

    db_name = os.environ.get("BENCH_DB", f"orders_bench_run_{os.getpid()}")
    workdir = Path(os.environ.get("BENCH_WORKDIR", ROOT / "var" / f"bench-{os.getpid()}"))
    clean_workdir(workdir)
    started = datetime.now(UTC)
    results: dict = {
        "started_at": started.isoformat(timespec="seconds"),
        "mode": "quick" if plan.quick else "full",
        "plan": asdict(plan),
        "machine": describe_machine(),
        "versions": read_versions(),
    }
    log(f"{results['mode']} run on {results['machine']['cores']} cores, database {db_name}")
    recreate_database(db_name)
    db = None
    try:
        migrate_env = stack_env(db_name, workdir, "orm")
        Stack(env=migrate_env, workdir=workdir).manage("migrate", "--noinput")
        db = Db(db_name)
        ids = db.seed()
        db.reset()
        results["ceilings"] = {"pgbench": measure_pgbench_ceilings(plan, db, db_name, ids)}
        results["ceilings"]["receipts"] = measure_receipt_ceiling(plan, Stack(env=migrate_env, workdir=workdir))
        db.reset()
        results["brokers"] = {}
        for broker in plan.brokers:
            results["brokers"][broker] = run_broker(plan, workdir, broker, results["ceilings"], db)
        # On servers of its own, on the hosts' bridge: the run's database is not touched.
        results["scale_out"] = measure_scale_out(plan, workdir / "scale-out")
        # Also on a server of its own: the ORM broker's NOTIFY at 8 to 128 connections.
        results["notify_commits"] = notify_commits.measure(plan)
        log("NOTIFY at commit (median commits/s · latency):\n" + notify_commits.render(results["notify_commits"]))
        # Last: a million orders of history would slow every scenario's reset before it.
        results["monitoring_page"] = measure_monitoring_page(plan, db, Stack(env=migrate_env, workdir=workdir))
        # On the same history: shoppers beside five slow admin requests, through nginx.
        results["backoffice_capacity"] = backoffice_capacity.measure(plan, db, Stack(env=migrate_env, workdir=workdir))
    finally:
        if db:
            db.purge_queue("redis")
            db.conn.close()
        if not args.keep_db:
            drop_database(db_name)
    shutil.rmtree(workdir, ignore_errors=True)  # kept only when the run fails: its logs are there
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["machine"]["load_average_end"] = os.getloadavg()

    path = report.write_results(results, started, quick=plan.quick)
    table = report.render(results)
    print(table)
    if not plan.quick and not args.no_markdown:
        report.refresh_markdown(ROOT / "BENCHMARKS.md", results, path.relative_to(ROOT))
        log("BENCHMARKS.md refreshed")
    log(f"results in {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"bench: FAILED: {error}\n(the stack's logs are under var/bench-*/)", file=sys.stderr)
        sys.exit(1)
