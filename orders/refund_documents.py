"""A refund's credit note: issued once the money went back, before the shopper is emailed.

Receipts number, render and store the note (`receipts.credit_notes`); here the refund is
read (payments) and the note recorded in the order's history, so the refund email can
carry its link.
"""

from django.db.models import Sum

from orders import history
from payments.models import Refund
from payments.money import to_cents
from receipts.credit_notes import RefundMade, issue_credit_note
from receipts.models import CreditNote

STEP = "issue_credit_note"


def refund_made(refund: Refund) -> RefundMade:
    """What the credit note of this refund says of it: the amount, the total refunded up to it, the reason shown."""
    refunded_total = Refund.objects.filter(
        payment_id=refund.payment_id, status=Refund.Status.SUCCEEDED, pk__lte=refund.pk
    ).aggregate(total=Sum("amount"))["total"]
    reason = refund.reason_code
    return RefundMade(
        refund_id=refund.pk,
        amount=refund.amount,
        currency=refund.currency,
        refunded_total=to_cents(refunded_total or refund.amount),
        reason=reason.label if reason.show_to_shopper else "",
    )


def issue_refund_credit_note(refund_id: int) -> CreditNote:
    """Issue (once) the credit note of a refund that went through, and record it in the order's history."""
    refund = Refund.objects.select_related("order", "reason_code").get(pk=refund_id, status=Refund.Status.SUCCEEDED)
    order = refund.order
    try:
        note = issue_credit_note(order, refund_made(refund))
    except Exception as error:
        # The refund email waits for its note: a manager must know it is held up (storage down).
        history.flag_order(
            order,
            actor=history.PIPELINE,
            step=STEP,
            finding=f"refund-{refund.pk}",
            message=f"The credit note of refund #{refund.pk} could not be stored ({type(error).__name__}: {error}); "
            "the shopper's refund email waits for it.",
        )
        raise
    if not order.events.filter(step=STEP, parameters__credit_note=note.number).exists():
        corrects = f", correcting receipt {note.receipt.number}" if note.receipt else ""
        history.step_succeeded(
            order,
            history.start_run(STEP, order),
            detail=f"Credit note {note.number} issued for refund #{refund.pk} ({refund.reason_code.label}){corrects}.",
            credit_note=note.number,
            refund=refund.pk,
            reason_code=refund.reason_code_id,
        )
    return note
