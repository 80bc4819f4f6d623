"""Is this process fit to serve: the readiness checks behind /health/ready.

Each check is one cheap read (a SELECT 1, a broker PING, one HEAD on the bucket, the
clusters' status from the queue's cache, one grouped query on the orders' state index),
so a load balancer may poll every second. Written plainly rather than with
django-health-check: it has no check of django-q2's cluster nor of stuck orders, and its
database and storage checks write and delete a row and a file on every poll.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.db import connection
from storages.backends.s3 import S3Storage

from framework.queue import broker, running_clusters
from orders.selectors import open_orders_by_state


class NotReady(Exception):
    """A check's finding, in words an operator can act on."""


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return connection.vendor


def check_task_broker() -> str:
    queue = broker()
    # The database broker has nothing to ping beyond the database; Redis answers PING.
    if queue.ping() is False:
        raise NotReady(f"{queue.info()} does not answer")
    return queue.info()


def check_receipt_storage() -> str:
    storage = storages["receipts"]
    if isinstance(storage, S3Storage):
        storage.connection.meta.client.head_bucket(Bucket=storage.bucket_name)
        return f"s3 bucket {storage.bucket_name}"
    if not isinstance(storage, FileSystemStorage):
        raise NotReady(f"receipt storage {type(storage).__name__} is neither S3 nor local files")
    location = str(storage.location)
    parent = location
    while not os.path.exists(parent):  # created on the first receipt: its nearest existing parent must be writable
        parent = os.path.dirname(parent)
    if not os.access(parent, os.W_OK):
        raise NotReady(f"{location} is not writable")
    return location


def check_cluster() -> str:
    from django_q.conf import Conf

    clusters = running_clusters()
    if not clusters:
        raise NotReady(f"no {Conf.CLUSTER_NAME!r} cluster has reported a heartbeat in the last 3 s")
    return ", ".join(f"{c.cluster_id} {c.status} ({len(c.workers)} workers)" for c in clusters)


def check_stuck_orders() -> str:
    limit = settings.ORDER_TIME_LIMIT_SECONDS
    over = {state: o for state, o in open_orders_by_state().items() if o.oldest_age_seconds > limit}
    if over:
        raise NotReady(
            "; ".join(f"{o.count} {state}, oldest untouched {o.oldest_age_seconds:.0f}s" for state, o in over.items())
            + f" (limit {limit}s)"
        )
    return f"every open order moved within {limit}s"


# The name each check answers under, in the order they run.
CHECKS: tuple[tuple[str, Callable[[], str]], ...] = (
    ("database", check_database),
    ("task_broker", check_task_broker),
    ("receipt_storage", check_receipt_storage),
    ("cluster", check_cluster),
    ("stuck_orders", check_stuck_orders),
)


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


def run_readiness_checks() -> list[CheckResult]:
    """Every check's verdict; a check that raises has failed, and says why."""
    results = []
    for name, check in CHECKS:
        try:
            results.append(CheckResult(name, True, check()))
        except NotReady as finding:
            results.append(CheckResult(name, False, str(finding)))
        except Exception as error:  # what a broken dependency raises: its type and words, never a traceback
            results.append(CheckResult(name, False, f"{type(error).__name__}: {error}"[:300]))
    return results
