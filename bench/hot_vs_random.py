"""A hot product against any product, accepted in the same run: the ratio of issue 23.

    python -m bench.hot_vs_random                      # 3 rounds of 6 s each way
    python -m bench.hot_vs_random --rounds 5 --seconds 10 --cluster

Makes the bench's database (bench/database.py, with plenty of the hot product, so no order
is refused), starts gunicorn as bench/stack.py does (Redis broker) and, with `--cluster`, the
django-q2 cluster working through the pipeline beside it (whose stock deductions lock the
hot product's row too), then posts orders with wrk at 8 connections in alternating runs: all
for random products among 1,000, then all for the hot product (which goes first alternates
each round), the database reset between runs. On a machine shared with others only the ratio
of runs side by side means something: the median of each side and the median of the
per-round ratios hot / random are printed, with a `BENCH_JSON` line.
"""

import argparse
import json
import os
import shutil
import statistics

from bench.database import HOT_SKU, Db
from bench.load_tools import run_wrk
from bench.log import log
from bench.stack import ROOT, BenchError, Stack, clean_workdir, drop_database, recreate_database, stack_env


def measure_round(stack: Stack, db: Db, *, kind: str, seconds: float, cluster: bool) -> float:
    """One wrk run of one kind on a reset database: accepted orders per second."""
    db.purge_queue("redis")
    db.reset()
    env = {"BENCH_HOT_SKU": HOT_SKU} if kind == "hot" else {}
    run = run_wrk(stack.url, connections=8, seconds=seconds, env=env)
    if run["errors"]:
        raise BenchError(f"{kind}: {run['errors']} errors: {run['error_sample']}")
    if not cluster:
        db.wait_for_trailing_accepts()
    return run["accepted_per_s"]


def main(argv: list[str] | None = None) -> int:
    """Alternate random and hot runs; print the medians and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--cluster", action="store_true", help="run the pipeline's cluster beside the web")
    parser.add_argument("--web-workers", type=int, default=3)
    args = parser.parse_args(argv)
    db_name = f"orders_bench_hot_{os.getpid()}"
    workdir = ROOT / "var" / f"bench-hot-{os.getpid()}"
    clean_workdir(workdir)
    recreate_database(db_name)
    env = stack_env(db_name, workdir, "redis")
    stack = Stack(env=env, workdir=workdir)
    db = None
    rates: dict[str, list[float]] = {"random": [], "hot": []}
    try:
        stack.manage("migrate", "--noinput")
        db = Db(db_name)
        db.seed()
        db.reset()
        stack.start_web(args.web_workers, 1)
        if args.cluster:
            stack.start_cluster(2)
        run_wrk(stack.url, connections=8, seconds=1)  # warm every worker up
        for n in range(args.rounds):
            order = ("random", "hot") if n % 2 == 0 else ("hot", "random")
            for kind in order:
                rates[kind].append(measure_round(stack, db, kind=kind, seconds=args.seconds, cluster=args.cluster))
            log(f"round {n + 1}: random {rates['random'][-1]}/s, hot {rates['hot'][-1]}/s")
    finally:
        stack.close()
        if db:
            db.purge_queue("redis")
            db.conn.close()
        drop_database(db_name)
        shutil.rmtree(workdir, ignore_errors=True)
    ratios = [hot / rnd for hot, rnd in zip(rates["hot"], rates["random"], strict=True) if rnd]
    result = {
        "cluster": args.cluster,
        "seconds": args.seconds,
        "random_per_s": rates["random"],
        "hot_per_s": rates["hot"],
        "random_median": statistics.median(rates["random"]),
        "hot_median": statistics.median(rates["hot"]),
        "hot_over_random_median": round(statistics.median(ratios), 3),
    }
    log(
        f"random {result['random_median']}/s, hot {result['hot_median']}/s: "
        f"hot / random {result['hot_over_random_median']} (median of per-round ratios)"
    )
    print("BENCH_JSON " + json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
