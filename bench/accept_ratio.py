"""Accepted orders/s over pgbench's random-product ceiling, measured side by side: the
accept scenario alone, for comparing two trees without the whole `make bench`.

    python -m bench.accept_ratio [--brokers redis,orm] [--repeats 3]

Makes the bench's database (as bench/run.py does), measures pgbench's random-product
ceiling, then per broker starts gunicorn as the full run does and runs scenario 1 at 8 and
32 connections and at half the peak (bench/scenarios.py `measure_accepts`). Prints one
`BENCH_JSON` line: pgbench's best run, and per broker the peak accepted/s, its ratio to
pgbench's tps and the CPU per order by part. Run it in each tree in turn; only ratios from
runs close together compare on a shared machine.
"""

import argparse
import json
import os
import shutil
import sys

from bench.database import Db
from bench.log import log
from bench.plan import Plan
from bench.scenarios import measure_accepts, measure_pgbench_ceilings, web_stack
from bench.stack import ROOT, Stack, clean_workdir, drop_database, recreate_database, stack_env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", default="redis,orm")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    brokers = [b for b in args.brokers.split(",") if b]
    plan = Plan.for_mode(False, brokers)
    plan.repeats, plan.concurrencies = args.repeats, [8, 32]
    db_name = f"orders_bench_ratio_{os.getpid()}"
    workdir = ROOT / "var" / f"bench-ratio-{os.getpid()}"
    clean_workdir(workdir)
    recreate_database(db_name)
    result: dict = {}
    try:
        Stack(env=stack_env(db_name, workdir, "orm"), workdir=workdir).manage("migrate", "--noinput")
        db = Db(db_name)
        ids = db.seed()
        db.reset()
        pgbench = measure_pgbench_ceilings(plan, db, db_name, ids)["random"]["best"]
        result["pgbench"] = {k: pgbench[k] for k in ("tps", "clients", "cpu_ms_per_txn", "repeats")}
        for broker in brokers:
            with web_stack(plan, db, workdir, broker) as ctx:
                peak = measure_accepts(ctx)["peak"]
            result[broker] = {
                "accepted_per_s": peak["accepted_per_s"],
                "ratio": round(peak["accepted_per_s"] / pgbench["tps"], 4),
                "cpu_ms_per_order": peak["cpu"]["ms_per_order"],
            }
            log(f"[{broker}] {result[broker]}")
        db.conn.close()
    finally:
        drop_database(db_name)
    shutil.rmtree(workdir, ignore_errors=True)
    print("BENCH_JSON " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
