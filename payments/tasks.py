"""django-q2 entry points of the payments app: thin, one id each."""

from payments import reconciliation, refunds, stripe_events


def process_stripe_event(event_pk: int) -> None:
    stripe_events.process_stripe_event(event_pk)


def issue_refund(refund_id: int) -> None:
    refunds.issue_refund(refund_id)


def reconcile_payments() -> int:
    return reconciliation.reconcile_payments()
