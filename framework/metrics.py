"""The shop's Prometheus metrics: counters and histograms, recorded where the facts happen.

Each is created once, at import, so recording one costs a dictionary lookup and an add.
prometheus_client runs in multiprocess mode (PROMETHEUS_MULTIPROC_DIR, which the settings
always set before this module is imported): every process, each gunicorn worker and each
cluster worker, adds to its own memory-mapped files in that folder, and `/metrics` sums
them (config/metrics_view.py). What is read from the database at scrape time (open orders,
the queue, low stock) is not here: it is collected when scraped, from the selectors.

Facts written inside a transaction are counted once it commits (`count_on_commit`), so a
rolled-back attempt is not counted as something that happened.

METRICS_ENABLED=0 turns recording off: every metric below is then `Unrecorded`, which
does nothing, and `/metrics` answers 404. The benchmark runs both ways to price the metrics.
"""

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import transaction
from prometheus_client import Counter, Histogram, multiprocess

PREFIX = "shop"

# Seconds: a step is milliseconds to seconds (a provider call, a PDF); an order's whole
# path is seconds, minutes when it waits for the shopper or a retry.
STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
ORDER_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
RENDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)

ENABLED = settings.METRICS_ENABLED


class Unrecorded:
    """A metric that records nothing (METRICS_ENABLED=0), with the calls the shop makes."""

    def __init__(self, *args, **kwargs):
        pass

    def labels(self, *values: str) -> "Unrecorded":
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def observe(self, value: float) -> None:
        pass

    def time(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()


if not ENABLED:
    # A stand-in with the calls the shop makes, not a subclass: the metrics keep prometheus_client's types.
    Counter = Histogram = Unrecorded  # type: ignore[misc, assignment]  # noqa: F811

ORDERS_PLACED = Counter(
    f"{PREFIX}_orders_placed",
    "Orders placed, counted as they leave PENDING (validated, rejected or cancelled), by currency.",
    ["currency"],
)
ORDERS_ENDED = Counter(
    f"{PREFIX}_orders_ended", "Orders that reached a final state, by state and currency.", ["state", "currency"]
)
STEP_ATTEMPTS = Counter(
    f"{PREFIX}_step_attempts",
    "Attempts of each step, by outcome (succeeded, failed, retrying, skipped), as written in the order's history.",
    ["step", "outcome"],
)
STEP_RETRIES = Counter(f"{PREFIX}_step_retries", "Attempts that failed and will be retried, by step.", ["step"])
STEP_DURATION = Histogram(
    f"{PREFIX}_step_duration_seconds", "How long each attempt of a step took, by step.", ["step"], buckets=STEP_BUCKETS
)
ORDER_COMPLETION = Histogram(
    f"{PREFIX}_order_completion_seconds",
    "From an order's acceptance to COMPLETED (receipt stored, shopper emailed).",
    buckets=ORDER_BUCKETS,
)
PAYMENT_OUTCOMES = Counter(
    f"{PREFIX}_payment_outcomes",
    "Answers of the payment provider as recorded on the order's payment, by provider, status and decline code.",
    ["provider", "status", "decline_code"],
)
RECEIPTS_RENDERED = Counter(f"{PREFIX}_receipts_rendered", "PDF receipts rendered.")
RECEIPT_RENDER = Histogram(
    f"{PREFIX}_receipt_render_seconds", "How long rendering one PDF receipt took.", buckets=RENDER_BUCKETS
)
EMAILS = Counter(
    f"{PREFIX}_emails",
    "Emails to shoppers, by kind and outcome (sent; failed: retried; uncertain: may have arrived, never resent).",
    ["kind", "outcome"],
)
WEBHOOK_EVENTS = Counter(
    f"{PREFIX}_webhook_events",
    "Webhook deliveries, by provider and outcome (accepted, duplicate, refused: a bad signature).",
    ["provider", "outcome"],
)
WEBHOOKS_SENT = Counter(
    f"{PREFIX}_webhooks_sent",
    "Attempts to deliver our webhooks to partners' endpoints, by outcome "
    "(delivered; failed: retried with backoff; refused: an address not allowed; gave_up: a day of failures).",
    ["outcome"],
)
SWEEPER_REDRIVES = Counter(
    f"{PREFIX}_sweeper_redrives",
    "Orders the sweeper or the pipeline tick nudged again, by what was found "
    "(stuck, unsettled, unnotified; nudged: a lost message, by the tick).",
    ["reason"],
)
RECONCILER_MISMATCHES = Counter(
    f"{PREFIX}_reconciler_mismatches", "Orders the reconciler newly flagged: our books disagree with the provider's."
)


def count_on_commit(record: Callable[[], None]) -> None:
    """Record a fact once the current transaction commits (at once outside a transaction)."""
    if ENABLED:
        transaction.on_commit(record)


def metrics_dir() -> Path:
    return Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def forget_dead_processes(path: Path | None = None) -> int:
    """Remove the metric files of processes that no longer run; returns how many went.

    Called when a web server starts (gunicorn.conf.py). A live process's files are never
    touched (it writes through a memory map, and would go on writing into a removed file),
    so restarting the web server alone keeps the cluster's counts. The counts of dead
    processes go: to Prometheus that is a counter reset, which rate() and increase() expect.
    """
    path = path or metrics_dir()
    removed = 0
    for file in path.glob("*.db"):
        pid = file.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _is_running(int(pid)):
            multiprocess.mark_process_dead(int(pid), str(path))
            file.unlink(missing_ok=True)
            removed += 1
    return removed


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: not ours to judge
    return True
