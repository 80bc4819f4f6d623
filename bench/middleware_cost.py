"""What each middleware costs a request: the framework's floor (POST /bench/floor, no code
of ours) in one process through Django's test client, with every middleware and then with
each one left out in turn, alternating, `rounds` times; CPU µs per request (process time)
and each middleware's share as the difference of the medians.

    python -m bench.middleware_cost --requests 2000 --rounds 5

Runs with the bench stack's settings (bench/stack.py) on a database made for it; the
floor endpoint touches no table, so the database only has to exist.
"""

import argparse
import contextlib
import json
import statistics
import sys
import time


def time_requests(middleware: list[str], requests: int) -> float:
    """CPU µs per POST /bench/floor through `middleware`, in this process."""
    from django.test import Client, override_settings

    body = json.dumps({"email": "shopper@example.com", "lines": [{"sku": "BENCH-0001", "quantity": 1}]})
    with override_settings(MIDDLEWARE=middleware):
        client = Client()  # a new handler: the middleware chain is built from the setting on its first request
        for _ in range(50):  # warm
            client.post("/bench/floor", body, content_type="application/json")
        started = time.process_time()
        for _ in range(requests):
            answer = client.post("/bench/floor", body, content_type="application/json")
        spent = time.process_time() - started
    if answer.status_code != 202:
        raise RuntimeError(f"/bench/floor answered {answer.status_code}")
    return 1e6 * spent / requests


def measure(requests: int, rounds: int) -> dict:
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    full = list(settings.MIDDLEWARE)
    samples: dict[str, list[float]] = {"all": [], **{m: [] for m in full}}
    for _ in range(rounds):
        samples["all"].append(time_requests(full, requests))
        for left_out in full:
            # Not when another one needs it (sessions, under auth and messages).
            with contextlib.suppress(ImproperlyConfigured):
                samples[left_out].append(time_requests([m for m in full if m != left_out], requests))
    all_us = statistics.median(samples["all"])
    return {
        "requests": requests,
        "rounds": rounds,
        "all_us": round(all_us, 1),
        "each_us": {m: round(all_us - statistics.median(samples[m]), 1) for m in full if samples[m]},
        "samples": {k: [round(v, 1) for v in vs] for k, vs in samples.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        import django

        django.setup()
        print("BENCH_JSON " + json.dumps(measure(args.requests, args.rounds)))
        return 0
    from bench.stack import run_in_process_on_fresh_database

    module = ["bench.middleware_cost", "--requests", str(args.requests), "--rounds", str(args.rounds)]
    result = run_in_process_on_fresh_database("middleware", "redis", module, what="middleware costs")
    print("BENCH_JSON " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
