"""django-q2 entry points: thin, one order id each; the pipeline re-reads the row.

A task that runs one step is named as the step (its label in the order's history).
"""

import logging

from django.conf import settings

from orders import audit, erasure, lapsing_holds, notifications, pipeline, refund_documents, reservations, sweeper

logger = logging.getLogger(__name__)


def advance_order(order_id: int) -> None:
    pipeline.advance_order(order_id)


def run_due_retry(retry_id: int) -> None:
    pipeline.run_due_retry(retry_id)


def refund_or_void(order_id: int) -> None:
    pipeline.run_step(order_id, "refund_or_void")


def send_failure_notification(order_id: int) -> None:
    pipeline.run_step(order_id, "send_failure_notification")


def send_refund_email(refund_id: int) -> None:
    """The refund went through: its credit note first, then one email carrying the note's link."""
    refund_documents.issue_refund_credit_note(refund_id)
    notifications.send_refund_email(refund_id)


def publish_order_state(order_id: int) -> None:
    pipeline.run_step(order_id, "publish_order_state")


def sweep_stuck_orders() -> int:
    return sweeper.sweep_stuck_orders()


def audit_invariants() -> int:
    """The scheduled audit, recorded: how many violations it found, each check's findings logged as an error."""
    report = audit.run_audit(window_hours=settings.AUDIT_WINDOW_HOURS)
    for check in report.checks:
        if check.violations:
            logger.error("invariant violated: %s (%d): %s", check.name, check.violations, "; ".join(check.examples))
    return report.violations


def settle_lapsing_holds() -> int:
    return lapsing_holds.settle_lapsing_holds()


def release_expired_reservations() -> int:
    return reservations.release_expired_reservations()


def anonymise_expired_shopper_data() -> int:
    return erasure.anonymise_expired_orders()


# The queue stores a task by its dotted path: messages queued before these tasks took the
# names of their jobs still carry the old paths, and still run.
compensate_order = refund_or_void
notify_failure = send_failure_notification
notify_refund = send_refund_email
