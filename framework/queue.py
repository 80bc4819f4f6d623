"""The task queue: every task's name, and the one way to queue one.

A queued task is only a nudge: it carries one row's id and re-reads the row, so a lost or
doubled message never loses or doubles work (DESIGN.md, durability rules). Tasks are named
here, once, so an app can nudge another's work without importing it.
"""

import functools
import logging
from dataclasses import dataclass
from enum import StrEnum

from django.db import transaction
from django.utils import timezone

from framework import log_context

logger = logging.getLogger(__name__)


class Task(StrEnum):
    """The django-q2 entry points, by their dotted paths (what the queue stores)."""

    ADVANCE_ORDER = "orders.tasks.advance_order"
    REFUND_OR_VOID = "orders.tasks.refund_or_void"
    SEND_FAILURE_NOTIFICATION = "orders.tasks.send_failure_notification"
    SEND_REFUND_EMAIL = "orders.tasks.send_refund_email"
    PUBLISH_ORDER_STATE = "orders.tasks.publish_order_state"
    RUN_DUE_RETRY = "orders.tasks.run_due_retry"
    SWEEP_STUCK_ORDERS = "orders.tasks.sweep_stuck_orders"
    AUDIT_INVARIANTS = "orders.tasks.audit_invariants"
    RELEASE_EXPIRED_RESERVATIONS = "orders.tasks.release_expired_reservations"
    ANONYMISE_EXPIRED_SHOPPER_DATA = "orders.tasks.anonymise_expired_shopper_data"
    SETTLE_LAPSING_HOLDS = "orders.tasks.settle_lapsing_holds"
    PROCESS_STRIPE_EVENT = "payments.tasks.process_stripe_event"
    ISSUE_REFUND = "payments.tasks.issue_refund"
    RECONCILE_PAYMENTS = "payments.tasks.reconcile_payments"
    EVALUATE_ALARMS = "monitoring.tasks.evaluate_alarms"
    DELIVER_WEBHOOKS = "webhooks.tasks.deliver_webhooks"
    DELETE_EXPIRED_CACHE_ENTRIES = "framework.tasks.delete_expired_cache_entries"

    @property
    def short_name(self) -> str:
        return self.value.rsplit(".", 1)[-1]


def enqueue(task: Task, object_id: int, *, group: str = "pipeline") -> None:
    """Queue a task for one row (an order, a refund, a webhook event), now."""
    from django_q.tasks import async_task

    q_options = {"group": group, "broker": broker()}
    async_task(str(task), object_id, task_name=f"{task.short_name}:{object_id}", q_options=q_options)


# The key under which a queued task carries the log context of whoever queued it.
LOG_CONTEXT_KEY = "log_context"
_BEFORE_KEY = "log_context_before"


def carry_log_context() -> None:
    """Carry the request id from whoever queues a task into the worker that runs it.

    No library carries context into django-q2: the request id goes into the task's package
    as it is queued (`pre_enqueue`) and is restored around its run (`pre_execute`, then
    `post_execute_in_worker` puts back what was there, which matters where tasks run inline).
    Connected once per process, from the orders app's `ready`.
    """
    from django_q.signals import post_execute_in_worker, pre_enqueue, pre_execute

    pre_enqueue.connect(_put_context_in_task, dispatch_uid="framework.queue.log_context.enqueue")
    pre_execute.connect(_take_context_from_task, dispatch_uid="framework.queue.log_context.execute")
    post_execute_in_worker.connect(_restore_context, dispatch_uid="framework.queue.log_context.done")


def _put_context_in_task(sender, task: dict, **kwargs) -> None:
    if request_id := log_context.current()["request_id"]:
        task[LOG_CONTEXT_KEY] = {"request_id": request_id}


def _take_context_from_task(sender, task: dict, **kwargs) -> None:
    task[_BEFORE_KEY] = log_context.current()
    log_context.restore(task.get(LOG_CONTEXT_KEY) or {})


def _restore_context(sender, task: dict, **kwargs) -> None:
    log_context.restore(task.pop(_BEFORE_KEY, {}))


def enqueue_on_commit(task: Task, object_id: int, *, group: str = "pipeline") -> None:
    """Queue the task once the current transaction commits (at once outside a transaction),
    so the worker that takes it reads what this transaction wrote.

    What committed stands even when the broker cannot be reached: the row is the truth and
    the sweeper nudges it later, so a broker outage never turns a placed order into an error.
    """
    transaction.on_commit(lambda: _nudge(task, object_id, group))


def _nudge(task: Task, object_id: int, group: str) -> None:
    from django_q.conf import Conf

    try:
        enqueue(task, object_id, group=group)
    except Exception as error:
        if Conf.SYNC:
            raise  # the task ran inline (tests): its own failure, not the broker's
        logger.warning("could not queue %s for %s (%s); the sweeper will nudge it", task.short_name, object_id, error)


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
