"""The accepting transaction's commit with the ORM broker's NOTIFY, without it, and as the
Redis broker commits it, at 8, 32 and 128 connections: which broker to scale out on.

    python -m bench.notify_commits          # BENCH_QUICK=1: two seconds per run

The ORM broker on PostgreSQL (config/broker.py) once inserted the task's row and sent a
NOTIFY in the transaction that accepts the order. PostgreSQL serialises every committing
transaction that sent a NOTIFY, database-wide, on one lock held through the commit's WAL
flush (recall.ai's outages of 2025: thousands of writers queued behind it). The Redis
broker's transaction holds neither the task row nor the NOTIFY: its push goes to Redis after
the commit. This measures the transactions alone, with pgbench (a C client: the
load tool costs little), on a PostgreSQL server of its own (fsync on, as in production;
max_connections 300, since the shared server's 100 would not take 128 clients), with one
listener draining the notifications as a cluster's pusher does:

- `redis`: reserve a unit, write the order (the Redis broker's transaction);
- `orm_poll`: the same and the task's row (django-q2's stock ORM broker, which polls);
- `orm_notify`: the same and `pg_notify` (the ORM broker as it first shipped on PostgreSQL);
- `orm_notify_after`: `orm_poll`'s transaction, then `pg_notify` alone after its commit;
- `orm_nudge_synced` and `orm_nudge_unsynced`: the Redis broker's transaction, then the
  task's row and its NOTIFY in one statement, as config/broker.py queues a task, its commit
  waiting for the WAL flush or not (framework/unsynced_commits.py; unsynced is shipped).

The three alternate within each round (`BENCH_REPEATS` rounds, the median reported): commits
per second, the mean latency of a transaction and of its COMMIT (`pgbench -r`). Timings are
reported, never asserted.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import threading
from pathlib import Path

import psycopg

from bench.log import log
from bench.plan import Plan, quick_from_env
from bench.stack import BenchError
from framework.unsynced_commits import UNSYNCED_COMMIT
from tests.support.servers import PrivatePostgres, server_directory

CLIENTS = [8, 32, 128]
KEYS = ("tps", "latency_ms", "commit_ms")
PRODUCTS = 1000
CHANNEL = "django_q.bench_notify"

SCHEMA = f"""
CREATE TABLE stock (product_id int PRIMARY KEY, on_hand int NOT NULL, reserved int NOT NULL,
                    CHECK (reserved >= 0 AND reserved <= on_hand));
CREATE TABLE orders (id bigserial PRIMARY KEY, reference text NOT NULL, email text NOT NULL,
                     state text NOT NULL, total numeric(12, 2) NOT NULL, created_at timestamptz DEFAULT now());
-- django-q2's OrmQ: the task's pickled payload and its lock time.
CREATE TABLE ormq (id serial PRIMARY KEY, key varchar(100) NOT NULL, payload text NOT NULL, lock timestamptz);
INSERT INTO stock SELECT n, 1000000000, 0 FROM generate_series(1, {PRODUCTS}) AS n;
"""

ACCEPT = f"""\\set product random(1, {PRODUCTS})
BEGIN;
UPDATE stock SET reserved = reserved + 1 WHERE product_id = :product AND on_hand - reserved >= 1;
INSERT INTO orders (reference, email, state, total)
VALUES (md5(random()::text), 'pgbench@example.com', 'VALIDATED', 10.99);
"""
TASK_ROW = "INSERT INTO ormq (key, payload, lock) VALUES ('bench_notify', repeat('x', 400), now());\n"
NOTIFY = f"SELECT pg_notify('{CHANNEL}', '');\n"
NUDGE = (
    "WITH queued AS (INSERT INTO ormq (key, payload, lock) VALUES ('bench_notify', repeat('x', 400), now()) "
    f"RETURNING id) SELECT id, pg_notify('{CHANNEL}', ''){{extra}} FROM queued;\n"
)
SCRIPTS = {
    "redis": ACCEPT + "END;\n",
    "orm_poll": ACCEPT + TASK_ROW + "END;\n",
    "orm_notify": ACCEPT + TASK_ROW + NOTIFY + "END;\n",
    # The NOTIFY sent after the commit, in a statement of its own (as an on_commit hook would).
    "orm_notify_after": ACCEPT + TASK_ROW + "END;\n" + NOTIFY,
    # As shipped (config/broker.py): the task's row and its NOTIFY after the commit, in one
    # statement of their own, whose commit waits for the disk (as before) or not (as now).
    "orm_nudge_synced": ACCEPT + "END;\n" + NUDGE.format(extra=""),
    "orm_nudge_unsynced": ACCEPT + "END;\n" + NUDGE.format(extra=f", {UNSYNCED_COMMIT}"),
}


def run_pgbench(url: str, script: Path, clients: int, seconds: int) -> dict:
    """One pgbench run: commits/s, mean latency, mean COMMIT latency (ms)."""
    done = subprocess.run(
        ["pgbench", "-n", "-r", "-f", str(script), "-c", str(clients), "-j", "2", "-T", str(seconds), url],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    if done.returncode:
        raise BenchError(f"pgbench failed: {done.stderr[-2000:]}")
    out = done.stdout
    if re.search(r"number of transactions actually processed: 0\b", out):
        # A quick run's second can go by in connecting 128 clients on a loaded machine.
        return {"tps": 0.0, "latency_ms": 0.0, "commit_ms": 0.0}
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    latency = re.search(r"latency average = ([\d.]+) ms", out)
    commit = re.search(r"^\s+([\d.]+)\s+\d+\s+END;$", out, re.M) or re.search(r"^\s+([\d.]+)\s+END;$", out, re.M)
    if not (tps and latency and commit):
        raise BenchError(f"pgbench's output not understood:\n{out[-2000:]}")
    return {"tps": float(tps.group(1)), "latency_ms": float(latency.group(1)), "commit_ms": float(commit.group(1))}


class Listener(threading.Thread):
    """LISTENs on the channel and drains the notifications, as the ORM broker's pusher does."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.conn = psycopg.connect(url, autocommit=True)
        self.conn.execute(f'LISTEN "{CHANNEL}"')
        self.stopping = threading.Event()
        self.received = 0

    def run(self) -> None:
        while not self.stopping.is_set():
            for _ in self.conn.notifies(timeout=0.5):
                self.received += 1

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)
        self.conn.close()


def measure(plan: Plan) -> dict:
    """Every script at every client count, alternating, `plan.repeats` rounds; medians."""
    seconds = 2 if plan.quick else plan.pgbench_seconds
    rounds = 1 if plan.quick else plan.repeats
    with server_directory("bench-notify") as directory:
        postgres = PrivatePostgres(directory)
        # Durable commits, as production's: the NOTIFY lock is held through the WAL flush.
        with (postgres.data / "postgresql.conf").open("a") as conf:
            conf.write("fsync = on\nfull_page_writes = on\nmax_connections = 300\n")
        try:
            postgres.start()
            url = postgres.create_database("notify_bench")
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(SCHEMA)
            scripts = {}
            for name, text in SCRIPTS.items():
                scripts[name] = directory / f"{name}.sql"
                scripts[name].write_text(text)
            listener = Listener(url)
            listener.start()
            runs: dict[str, dict[int, list[dict]]] = {name: {c: [] for c in CLIENTS} for name in SCRIPTS}
            try:
                for round_ in range(rounds):
                    for clients in CLIENTS:
                        order = list(SCRIPTS) if round_ % 2 == 0 else list(reversed(SCRIPTS))
                        for name in order:
                            result = run_pgbench(url, scripts[name], clients, seconds)
                            runs[name][clients].append(result)
                            log(f"notify: {name} at {clients} connections: {result}")
            finally:
                listener.stop()
        finally:
            postgres.stop(mode="immediate")
    medians = {
        name: {
            str(clients): {key: statistics.median(r[key] for r in results) for key in KEYS}
            for clients, results in by_clients.items()
        }
        for name, by_clients in runs.items()
    }
    return {"seconds": seconds, "rounds": rounds, "clients": CLIENTS, "medians": medians, "runs": runs}


def render(result: dict) -> str:
    """The medians as a table, with NOTIFY's commits/s as a share of the same without it."""
    header = "connections | Redis broker's transaction | ORM broker, polling | ORM broker with NOTIFY | NOTIFY/polling"
    header += " | NOTIFY after the commit | task row and NOTIFY after it, synced · unsynced"
    lines = [f"| {header} |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for clients in result["clients"]:
        cells = []
        for name in ("redis", "orm_poll", "orm_notify"):
            m = result["medians"][name][str(clients)]
            cells.append(f"{m['tps']:,.0f}/s · {m['latency_ms']:.1f} ms (commit {m['commit_ms']:.1f})")
        poll, notify = result["medians"]["orm_poll"][str(clients)], result["medians"]["orm_notify"][str(clients)]
        ratio = notify["tps"] / poll["tps"] if poll["tps"] else 0.0
        after = result["medians"]["orm_notify_after"][str(clients)]
        cells.append(f"{ratio:.2f}")
        cells.append(f"{after['tps']:,.0f}/s · {after['latency_ms']:.1f} ms (commit {after['commit_ms']:.1f})")
        synced, unsynced = (result["medians"][f"orm_nudge_{kind}"][str(clients)] for kind in ("synced", "unsynced"))
        cells.append(f"{synced['tps']:,.0f}/s · {unsynced['tps']:,.0f}/s ({unsynced['latency_ms']:.1f} ms)")
        lines.append(f"| {clients} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    plan = Plan.for_mode(quick_from_env(), ["orm"])
    result = measure(plan)
    print(render(result))
    print("BENCH_JSON " + json.dumps(result))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PGAPPNAME", "bench_notify")
    sys.exit(main())
