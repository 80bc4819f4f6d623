"""A hot product against any product, accepted in the same run: the ratio of issue 23.

    python -m bench.hot_vs_random                      # 3 rounds of 6 s each way
    python -m bench.hot_vs_random --rounds 5 --seconds 10 --cluster
    python -m bench.hot_vs_random --bench-row --broker orm --waits

Makes the bench's database (bench/database.py, with plenty of the hot product, so no order
is refused), starts gunicorn as bench/stack.py does (Redis broker, or the database's with
`--broker orm`) and, with `--cluster`, the django-q2 cluster working through the pipeline
beside it (whose stock deductions lock the hot product's row too), then posts orders with
wrk at 8 connections in alternating runs: all for random products among 1,000, then all for
the hot product (which goes first turns each round), the database reset between runs. Each
run counts the units reserved (one per order, orders that reached VALIDATED), as the bench's
hot row does. `--bench-row` measures what that row of `make bench` divides: random products
with no cluster running (scenario 1), against random and hot products with the cluster
beside (scenario 3), the cluster stopped and started between runs. On a machine shared with
others only the ratio of runs side by side means something: the median of each kind and the
medians of the per-round ratios are printed, with a `BENCH_JSON` line; `--waits` prints what
the database's backends waited on in each run (`WaitSampler`).
"""

import argparse
import collections
import json
import os
import shutil
import statistics
import threading
import time

import psycopg

from bench.database import HOT_SKU, Db
from bench.load_tools import run_wrk
from bench.log import log
from bench.stack import PG_URL, ROOT, BenchError, Stack, clean_workdir, drop_database, recreate_database, stack_env


class WaitSampler:
    """What the run's database backends are doing, sampled every 10 ms from pg_stat_activity:
    the share of samples per (state, wait event), so a run says where its buyers wait (a row
    lock: `Lock:transactionid`; the WAL flush at commit: `IO:WALSync`; Python working inside
    an open transaction: `idle in transaction`)."""

    def __init__(self, db_name: str):
        self.db_name = db_name
        self.counts: collections.Counter[str] = collections.Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "WaitSampler":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self) -> None:
        with psycopg.connect(f"{PG_URL}/{self.db_name}", autocommit=True) as conn:
            while not self._stop.is_set():
                rows = conn.execute(
                    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid() AND application_name <> 'bench-driver' "
                    "AND state <> 'idle'",
                    (self.db_name,),
                ).fetchall()
                self.samples += 1
                for state, kind, event in rows:
                    self.counts[f"{state}:{kind}:{event}" if kind else f"{state}:cpu"] += 1
                time.sleep(0.01)

    def shares(self) -> dict[str, float]:
        """Backends per sample in each state, busiest first."""
        return {key: round(n / max(1, self.samples), 3) for key, n in self.counts.most_common(8)}


def measure_round(stack: Stack, db: Db, *, kind: str, seconds: float, broker: str) -> dict:
    """One wrk run of one kind on a reset database: units reserved per second (one unit per
    order, as bench/orders.lua asks), and where the database's backends waited meanwhile."""
    db.purge_queue(broker)
    db.reset()
    env = {"BENCH_HOT_SKU": HOT_SKU} if kind.startswith("hot") else {}
    with WaitSampler(db.name) as waits:
        run = run_wrk(stack.url, connections=8, seconds=seconds, env=env)
    if run["errors"]:
        raise BenchError(f"{kind}: {run['errors']} errors: {run['error_sample']}")
    if not stack.cluster:
        db.wait_for_trailing_accepts()
    # As the bench's hot row counts: units reserved (orders that reached VALIDATED), not answers.
    (reserved,) = db.one(
        "SELECT count(*) FROM orders_orderevent WHERE step = 'validate_order' AND to_state = 'VALIDATED'"
    )
    if reserved < run["accepted"]:
        raise BenchError(f"{kind}: {run['accepted']} orders answered, {reserved} reserved")
    return {"per_s": run["accepted_per_s"], "waits": waits.shares()}


def kinds_of(args: argparse.Namespace) -> list[str]:
    """The runs of one round: products ("random", "hot") and whether the cluster runs beside."""
    if args.bench_row:
        return ["random", "random+cluster", "hot+cluster"]
    return ["random+cluster", "hot+cluster"] if args.cluster else ["random", "hot"]


def ratios(rates: dict[str, list[float]], over: str, under: str) -> float:
    """The median of the per-round ratios `over` / `under`."""
    return round(statistics.median(o / u for o, u in zip(rates[over], rates[under], strict=True) if u), 3)


def main(argv: list[str] | None = None) -> int:
    """Alternate random and hot runs; print the medians and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--cluster", action="store_true", help="run the pipeline's cluster beside the web")
    parser.add_argument(
        "--bench-row",
        action="store_true",
        help="as the bench's row: random without the cluster, against hot and random with it",
    )
    parser.add_argument("--broker", choices=["redis", "orm"], default="redis")
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--waits", action="store_true", help="print each run's wait events")
    args = parser.parse_args(argv)
    kinds = kinds_of(args)
    db_name = f"orders_bench_hot_{os.getpid()}"
    workdir = ROOT / "var" / f"bench-hot-{os.getpid()}"
    clean_workdir(workdir)
    recreate_database(db_name)
    env = stack_env(db_name, workdir, args.broker)
    stack = Stack(env=env, workdir=workdir)
    db = None
    rates: dict[str, list[float]] = {kind: [] for kind in kinds}
    waits: dict[str, list[dict]] = {kind: [] for kind in kinds}
    try:
        stack.manage("migrate", "--noinput")
        db = Db(db_name)
        db.seed()
        db.reset()
        stack.start_web(args.web_workers, 1)
        run_wrk(stack.url, connections=8, seconds=1)  # warm every worker up
        for n in range(args.rounds):
            # Which kind goes first turns each round; the cluster starts or stops between runs.
            for kind in kinds[n % len(kinds) :] + kinds[: n % len(kinds)]:
                if kind.endswith("+cluster") and not stack.cluster:
                    stack.start_cluster(2)
                elif not kind.endswith("+cluster") and stack.cluster:
                    db.purge_queue(args.broker)
                    stack.stop_cluster()
                got = measure_round(stack, db, kind=kind, seconds=args.seconds, broker=args.broker)
                rates[kind].append(got["per_s"])
                waits[kind].append(got["waits"])
                if args.waits:
                    log(f"round {n + 1} {kind}: {got['per_s']}/s, backends per sample {got['waits']}")
            log(f"round {n + 1}: " + ", ".join(f"{kind} {rates[kind][-1]}/s" for kind in kinds))
    finally:
        stack.close()
        if db:
            db.purge_queue(args.broker)
            db.conn.close()
        drop_database(db_name)
        shutil.rmtree(workdir, ignore_errors=True)
    hot, random = kinds[-1], kinds[-2]
    result = {
        "broker": args.broker,
        "seconds": args.seconds,
        "per_s": rates,
        "medians": {kind: statistics.median(rates[kind]) for kind in kinds},
        "hot_over_random_median": ratios(rates, hot, random),
        "waits": waits,
    }
    if args.bench_row:
        # The bench's row divides the hot run (cluster beside it) by random accepts alone.
        result["hot_cluster_over_random_alone"] = ratios(rates, "hot+cluster", "random")
        result["random_cluster_over_random_alone"] = ratios(rates, "random+cluster", "random")
    log(
        f"[{args.broker}] medians {result['medians']}: {hot} / {random} {result['hot_over_random_median']}"
        + (
            f"; hot+cluster / random alone {result['hot_cluster_over_random_alone']}, "
            f"random+cluster / random alone {result['random_cluster_over_random_alone']}"
            if args.bench_row
            else ""
        )
        + " (medians of per-round ratios)"
    )
    print("BENCH_JSON " + json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
