"""The load drivers: wrk posting orders (bench/orders.lua), pgbench running one order's
reservation (bench/reserve.sql), and a Python client placing one order at a time.

Each run reports what it sent and how it was answered, and what the tool itself cost in
CPU, so that the load tool is seen not to steal the CPU it measures.
"""

import json
import os
import re
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

from bench.meters import BackendCpu
from bench.procfs import machine_busy_seconds
from bench.stack import ROOT, BenchError

BENCH_DIR = ROOT / "bench"


def run_wrk(url: str, *, connections: int, seconds: float, env: dict[str, str] | None = None, threads: int = 2) -> dict:
    """One wrk run of bench/orders.lua; its summary plus its own CPU use and the machine's."""
    threads = min(threads, connections)
    wrk_env = dict(os.environ, BENCH_THREADS=str(threads), BENCH_RUN_ID=uuid.uuid4().hex[:12], **(env or {}))
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(BENCH_DIR / "orders.lua"),
        url,
    ]
    # Named per call: the scale-out scenario runs one wrk per app host at once.
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-wrk-{os.getpid()}-{uuid.uuid4().hex[:8]}.out"
    with open(out_path, "w+") as out:
        busy_before, started = machine_busy_seconds(), time.monotonic()
        popen = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=wrk_env)
        # wait4 hands back the child's own rusage: the load tool's CPU, measured exactly.
        _, status, usage = os.wait4(popen.pid, 0)
        popen.returncode = os.waitstatus_to_exitcode(status)
        wall, busy = time.monotonic() - started, machine_busy_seconds() - busy_before
        out.seek(0)
        text = out.read()
    out_path.unlink(missing_ok=True)
    match = re.search(r"^BENCH_JSON (\{.*\})$", text, re.M)
    if popen.returncode or not match:
        raise BenchError(f"wrk failed ({popen.returncode}): {' '.join(cmd)}\n{text[-2000:]}")
    summary = json.loads(match.group(1))
    wrk_cpu = usage.ru_utime + usage.ru_stime
    duration = summary["duration_us"] / 1e6
    ok = summary["requests"] - summary["status_errors"]
    socket_errors = sum(summary[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return {
        "connections": connections,
        "threads": threads,
        "seconds": round(duration, 2),
        "requests": summary["requests"],
        "accepted": ok,
        "accepted_per_s": round(ok / duration, 1) if duration else 0.0,
        "errors": summary["status_errors"] + socket_errors,
        "status_errors": summary["status_errors"],
        "socket_errors": socket_errors,
        "p50_ms": round(summary["p50_us"] / 1000, 2),
        "p95_ms": round(summary["p95_us"] / 1000, 2),
        "p99_ms": round(summary["p99_us"] / 1000, 2),
        "max_ms": round(summary["max_us"] / 1000, 2),
        "wrk_cpu_s": round(wrk_cpu, 3),
        "wrk_core_share": round(wrk_cpu / wall, 3),
        "wrk_machine_share": round(wrk_cpu / busy, 3) if busy else 0.0,
        "machine_busy_share": round(busy / (wall * os.cpu_count()), 3),
        "error_sample": [line for line in text.splitlines() if line.startswith("BENCH_ERROR")][:3],
    }


def run_pgbench(db_name: str, ids: dict[str, int], *, clients: int, seconds: int, hot: bool) -> dict:
    """One pgbench run of bench/reserve.sql (on the hot product or random ones); its
    summary, its own CPU use and its backends'."""
    defines = ["-D", f"pmin={ids['hot'] if hot else ids['pmin']}", "-D", f"pmax={ids['hot'] if hot else ids['pmax']}"]
    cmd = [
        "pgbench",
        "-n",
        "-c",
        str(clients),
        "-j",
        str(min(clients, os.cpu_count() or 1)),
        "-T",
        str(seconds),
        "-f",
        str(BENCH_DIR / "reserve.sql"),
        *defines,
        "-h",
        "127.0.0.1",
        "-U",
        "postgres",
        db_name,
    ]
    watcher = BackendCpu(db_name)
    busy_before, started = machine_busy_seconds(), time.monotonic()
    popen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    text = popen.stdout.read()
    _, status, usage = os.wait4(popen.pid, 0)
    popen.returncode = os.waitstatus_to_exitcode(status)
    wall, busy = time.monotonic() - started, machine_busy_seconds() - busy_before
    backends_cpu = watcher.stop()
    tps = re.search(r"^tps = ([\d.]+)", text, re.M)
    latency = re.search(r"^latency average = ([\d.]+) ms", text, re.M)
    failed = re.search(r"^number of failed transactions: (\d+)", text, re.M)
    processed = re.search(r"^number of transactions actually processed: (\d+)", text, re.M)
    if popen.returncode or not tps or not processed:
        raise BenchError(f"pgbench failed ({popen.returncode}): {' '.join(cmd)}\n{text[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    transactions = int(processed.group(1))
    return {
        "clients": clients,
        "tps": round(float(tps.group(1)), 1),
        "transactions": transactions,
        "latency_avg_ms": float(latency.group(1)) if latency else None,
        "failed": int(failed.group(1)) if failed else 0,
        "pgbench_core_share": round(cpu / wall, 3),
        "pgbench_machine_share": round(cpu / busy, 3) if busy else 0.0,
        # The server's and the client's CPU per transaction: the ceiling with the noise of a
        # shared machine taken out (a backend's last fraction of a second may be missed).
        "cpu_ms_per_txn": {
            "postgres": round(1000 * backends_cpu / transactions, 3),
            "pgbench": round(1000 * cpu / transactions, 3),
        },
        "others_share": round(max(0.0, busy - cpu - backends_cpu) / busy, 3) if busy else 0.0,
    }


def place_one_order(url: str) -> str:
    """POST one order the way a shopper's client does; its reference."""
    body = json.dumps(
        {"email": "idle@example.com", "lines": [{"sku": "BENCH-0001", "quantity": 1}], "payment_method": "pm_card_visa"}
    ).encode()
    request = urllib.request.Request(
        f"{url}/api/orders/",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        if answer.status != 202:
            raise BenchError(f"placing an order answered {answer.status}")
        return json.loads(answer.read())["reference"]
