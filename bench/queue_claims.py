"""What a task costs the database broker's cluster to take: one claim (the pusher) and one
acknowledgement (the monitor), per task, in one process.

    python -m bench.queue_claims [--tasks 800] [--queued 3000] [--rounds 3]

On a fresh database of the bench's (bench/stack.py), with the stack's settings and the
database broker (config/broker.py's PostgresOrmBroker), queues `--queued` tasks, then claims
and acknowledges `--tasks` of them one by one, `--rounds` times: per task, this process's
CPU, its PostgreSQL backend's CPU (/proc) and the wall time. Prints one `BENCH_JSON` line.
Run it in two trees in turn to compare them.
"""

import argparse
import json
import sys
import time

from bench.procfs import cpu_seconds


def measure(tasks: int, queued: int, rounds: int) -> list[dict]:
    """Claim and acknowledge `tasks` tasks `rounds` times from a queue of `queued`; the
    Django settings must be set up already."""
    from django.db import connection
    from django_q.conf import Conf
    from django_q.signing import SignedPackage

    from config.broker import PostgresOrmBroker

    Conf.ORM = "default"
    broker = PostgresOrmBroker(list_key="bench_queue_claims")
    package = SignedPackage.dumps({"id": "t", "name": "t", "func": "math.floor", "args": (1.5,), "kwargs": {}})
    for _ in range(queued):
        broker.enqueue(package)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    results = []
    for _ in range(rounds):
        cpu, wall, db_cpu = time.process_time(), time.perf_counter(), cpu_seconds(backend)
        for _ in range(tasks):
            # The claim itself: `dequeue` also runs the pipeline tick when due and listens.
            ((task_id, _payload),) = broker._claim()
            broker.acknowledge(task_id)
        results.append(
            {
                "python_ms": round(1000 * (time.process_time() - cpu) / tasks, 3),
                "postgres_ms": round(1000 * (cpu_seconds(backend) - db_cpu) / tasks, 3),
                "wall_ms": round(1000 * (time.perf_counter() - wall) / tasks, 3),
            }
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=800)
    parser.add_argument("--queued", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # the stack's environment is set: measure
        import django

        django.setup()
        print("BENCH_JSON " + json.dumps({"rounds": measure(args.tasks, args.queued, args.rounds)}))
        return 0
    from bench.stack import run_in_process_on_fresh_database

    module = ["bench.queue_claims", "--tasks", str(args.tasks), "--queued", str(args.queued)]
    module += ["--rounds", str(args.rounds)]
    result = run_in_process_on_fresh_database("queue_claims", "orm", module, what="queue claims")
    print("BENCH_JSON " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
