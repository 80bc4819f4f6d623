"""Where the CPU goes: py-spy on the benchmark's stack, summarised per function.

    python -m bench.profile cluster   # the whole qcluster while orders flow end to end
    python -m bench.profile web       # one gunicorn worker while wrk posts orders
    python -m bench.profile cluster --broker orm   # the same on the database broker

Brings up the stack of `make bench` (Redis broker, or `--broker`'s) on a fresh database, applies a load
with wrk, records with `py-spy record --format raw` and writes
bench/profiles/<target>-<what>[-orm].txt: the inclusive and the self share of the samples per
function, the form the notes in BENCHMARKS.md quote.
"""

import argparse
import collections
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.database import PRODUCTS, Db
from bench.load_tools import run_wrk
from bench.log import log
from bench.procfs import children
from bench.stack import ROOT, Stack, clean_workdir, drop_database, recreate_database, stack_env

PROFILES = ROOT / "bench" / "profiles"
PY_SPY = Path(sys.executable).parent / "py-spy"
BROKERS = {"redis": "Redis broker", "orm": "database broker"}


def summarise(raw: Path, header: list[str], top: int = 80) -> str:
    """py-spy's collapsed stacks as inclusive and self shares per function."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        total += samples
        # "function (file:line)" frames; py-spy --subprocesses adds a "process <pid>" root.
        frames = [frame.strip() for frame in stack.split(";") if frame.strip() and not frame.startswith("process ")]
        for function in {re.sub(r":\d+\)$", ")", frame) for frame in frames}:  # once per stack
            inclusive[function] += samples
        if frames:
            own[frames[-1]] += samples
    lines = [*header, f"total samples {total}", "--- inclusive"]
    lines += [f"{100 * n / total:5.1f}% {function}" for function, n in inclusive.most_common(top)]
    lines.append("--- self")
    lines += [f"{100 * n / total:5.1f}% {function}" for function, n in own.most_common(top // 4)]
    return "\n".join(lines) + "\n"


def record(pid: int, seconds: int, out: Path, *, subprocesses: bool) -> subprocess.Popen:
    cmd = [str(PY_SPY), "record", "--format", "raw", "-r", "100", "-d", str(seconds), "-o", str(out), "-p", str(pid)]
    if subprocesses:
        cmd.append("--subprocesses")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=["cluster", "web"])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rate", type=float, default=10.0, help="orders per second offered (cluster)")
    parser.add_argument("--broker", choices=["redis", "orm"], default="redis")
    args = parser.parse_args(argv)

    db_name = f"orders_bench_profile_{args.target}"
    workdir = ROOT / "var" / f"bench-profile-{args.target}"
    clean_workdir(workdir)
    recreate_database(db_name)
    env = stack_env(db_name, workdir, args.broker)
    stack = Stack(env=env, workdir=workdir)
    raw = workdir / "py-spy.raw"
    try:
        stack.manage("migrate", "--noinput")
        db = Db(db_name)
        db.seed()
        db.reset()
        if args.target == "cluster":
            stack.start_web(3, 1)
            stack.start_cluster(2)
            run_wrk(stack.url, connections=4, seconds=3, env={"BENCH_RATE": str(args.rate)})  # warm up
            spy = record(stack.cluster.pid, args.seconds, raw, subprocesses=True)
            time.sleep(1)
            run_wrk(stack.url, connections=4, seconds=args.seconds, env={"BENCH_RATE": str(args.rate)})
            what = f"pipeline at {args.rate:g} orders/s, 2 workers, {BROKERS[args.broker]}"
            name = "cluster-pipeline.txt"
        else:
            stack.start_web(1, 1)
            run_wrk(stack.url, connections=4, seconds=3)  # warm up
            (worker,) = children(stack.web.pid)
            spy = record(worker, args.seconds, raw, subprocesses=False)
            time.sleep(1)
            run_wrk(stack.url, connections=4, seconds=args.seconds)
            what = f"POST /api/orders/ from wrk at 4 connections, one gunicorn worker, random products of {PRODUCTS}"
            what += f", {BROKERS[args.broker]}"
            name = "web-accept.txt"
        if args.broker != "redis":
            name = name.replace(".txt", f"-{args.broker}.txt")
        spy.wait(timeout=args.seconds + 60)
        command = " ".join(argv if argv is not None else sys.argv[1:])
        header = [
            f"# py-spy record -r 100 on the {args.target} ({what}); `python -m bench.profile {command}`.",
            f"# Inclusive share of samples per function ({time.strftime('%Y-%m-%d')}).",
        ]
        PROFILES.mkdir(exist_ok=True)
        (PROFILES / name).write_text(summarise(raw, header))
        log(f"wrote {(PROFILES / name).relative_to(ROOT)}")
        db.conn.close()
    finally:
        stack.close()
        drop_database(db_name)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
