"""The task queue: every task's name, and the one way to queue one.

A queued task is only a nudge: it carries one row's id and re-reads the row, so a lost or
doubled message never loses or doubles work (DESIGN.md, durability rules). Tasks are named
here, once, so an app can nudge another's work without importing it.
"""

import functools
from enum import StrEnum

from django.db import transaction


class Task(StrEnum):
    """The django-q2 entry points, by their dotted paths (what the queue stores)."""

    ADVANCE_ORDER = "orders.tasks.advance_order"
    COMPENSATE_ORDER = "orders.tasks.compensate_order"
    NOTIFY_FAILURE = "orders.tasks.notify_failure"
    PUBLISH_ORDER_STATE = "orders.tasks.publish_order_state"
    SWEEP_STUCK_ORDERS = "orders.tasks.sweep_stuck_orders"
    RELEASE_EXPIRED_RESERVATIONS = "orders.tasks.release_expired_reservations"
    PROCESS_STRIPE_EVENT = "payments.tasks.process_stripe_event"
    ISSUE_REFUND = "payments.tasks.issue_refund"
    RECONCILE_PAYMENTS = "payments.tasks.reconcile_payments"

    @property
    def short_name(self) -> str:
        return self.value.rsplit(".", 1)[-1]


def enqueue(task: Task, object_id: int, *, group: str = "pipeline") -> None:
    """Queue a task for one row (an order, a refund, a webhook event), now."""
    from django_q.conf import Conf
    from django_q.tasks import async_task

    broker = _broker(Conf.CLUSTER_NAME, repr(Conf.BROKER_CLASS), repr(Conf.REDIS), repr(Conf.ORM))
    q_options = {"group": group, "broker": broker}
    async_task(str(task), object_id, task_name=f"{task.short_name}:{object_id}", q_options=q_options)


def enqueue_on_commit(task: Task, object_id: int, *, group: str = "pipeline") -> None:
    """Queue the task once the current transaction commits (at once outside a transaction),
    so the worker that takes it reads what this transaction wrote."""
    transaction.on_commit(lambda: enqueue(task, object_id, group=group))


@functools.cache
def _broker(*configuration: str):
    """One broker per process and configuration: django-q2 would build a new one for every
    task, which on Redis means a new connection (and a metadata lookup) per enqueue."""
    from django_q.brokers import get_broker

    return get_broker()
