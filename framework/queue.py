"""The task queue: every task's name, and the one way to queue one.

A queued task is only a nudge: it carries one row's id and re-reads the row, so a lost or
doubled message never loses or doubles work (DESIGN.md, durability rules). Tasks are named
here, once, so an app can nudge another's work without importing it.
"""

import functools
from dataclasses import dataclass
from enum import StrEnum

from django.db import transaction
from django.utils import timezone


class Task(StrEnum):
    """The django-q2 entry points, by their dotted paths (what the queue stores)."""

    ADVANCE_ORDER = "orders.tasks.advance_order"
    COMPENSATE_ORDER = "orders.tasks.compensate_order"
    NOTIFY_FAILURE = "orders.tasks.notify_failure"
    PUBLISH_ORDER_STATE = "orders.tasks.publish_order_state"
    SWEEP_STUCK_ORDERS = "orders.tasks.sweep_stuck_orders"
    PROCESS_STRIPE_EVENT = "payments.tasks.process_stripe_event"
    ISSUE_REFUND = "payments.tasks.issue_refund"
    RECONCILE_PAYMENTS = "payments.tasks.reconcile_payments"
    EVALUATE_ALARMS = "monitoring.tasks.evaluate_alarms"

    @property
    def short_name(self) -> str:
        return self.value.rsplit(".", 1)[-1]


def enqueue(task: Task, object_id: int, *, group: str = "pipeline") -> None:
    """Queue a task for one row (an order, a refund, a webhook event), now."""
    from django_q.tasks import async_task

    q_options = {"group": group, "broker": broker()}
    async_task(str(task), object_id, task_name=f"{task.short_name}:{object_id}", q_options=q_options)


def enqueue_on_commit(task: Task, object_id: int, *, group: str = "pipeline") -> None:
    """Queue the task once the current transaction commits (at once outside a transaction),
    so the worker that takes it reads what this transaction wrote."""
    transaction.on_commit(lambda: enqueue(task, object_id, group=group))


def broker():
    """This process's broker for the configured queue (see `_broker`)."""
    from django_q.conf import Conf

    return _broker(Conf.CLUSTER_NAME, repr(Conf.BROKER_CLASS), repr(Conf.REDIS), repr(Conf.ORM))


@dataclass(frozen=True)
class Backlog:
    """Tasks waiting in the queue: how many, and how long the oldest has waited."""

    depth: int
    oldest_age_seconds: float


def queue_backlog() -> Backlog:
    """The queue's depth and the age of its oldest task, read from the broker itself."""
    from django_q.signing import SignedPackage

    queue = broker()
    depth = queue.queue_size() or 0
    oldest = _oldest_payload(queue) if depth else None
    if oldest is None:
        return Backlog(depth, 0.0)
    started = SignedPackage.loads(oldest)["started"]
    return Backlog(depth, max(0.0, (timezone.now() - started).total_seconds()))


def _oldest_payload(queue) -> str | None:
    """The payload at the head of the queue: the Redis list's first item, the ORM table's first row."""
    from django_q.brokers.orm import ORM

    if isinstance(queue, ORM):
        row = queue.get_connection().filter(key=queue.list_key).order_by("id").values_list("payload", flat=True).first()
        return row
    head = queue.connection.lindex(queue.list_key, 0)
    return head.decode() if isinstance(head, bytes) else head


def running_clusters() -> list:
    """django-q2's own status of every cluster that has reported within its heartbeat
    (`django_q.status.Stat`: cluster id, status, workers, when it last reported)."""
    from django_q.status import Stat

    return Stat.get_all(broker=broker())


@functools.cache
def _broker(*configuration: str):
    """One broker per process and configuration: django-q2 would build a new one for every
    task, which on Redis means a new connection (and a metadata lookup) per enqueue."""
    from django_q.brokers import get_broker

    return get_broker()
