"""Credit notes: the numbered document of each refund, correcting the order's receipt.

Numbered from their own gap-free sequence (CN-00000001, ...), rendered like receipts, stored
whole or not at all where receipts are, and linked the same way (opaque, short-lived links).
Receipts know nothing of payments: the caller says what was refunded and why.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from orders.models import Order
from receipts.models import CreditNote, DocumentSequence, Receipt
from receipts.rendering import CreditNoteDocument, render_credit_note_pdf
from receipts.services import (
    InvalidReceiptLink,
    link_id_of,
    receipt_lines,
    record_stored,
    signed_document_url,
    store_whole_pdf,
)

LINK_SALT = "receipts.credit_note"
SEQUENCE = "credit_note"


@dataclass(frozen=True)
class RefundMade:
    """What a credit note says of its refund, as the caller (the orders layer) read it."""

    refund_id: int
    amount: Decimal
    currency: str
    refunded_total: Decimal  # on the order, this refund included
    reason: str  # as the shopper may read it; "" when the reason is not for their eyes


def number_credit_note(order: Order, refund: RefundMade) -> CreditNote:
    """The refund's credit note row, numbered once: the next number, under the sequence's lock."""
    DocumentSequence.objects.get_or_create(name=SEQUENCE)
    with transaction.atomic():
        sequence = DocumentSequence.objects.select_for_update().get(name=SEQUENCE)
        note = CreditNote.objects.filter(refund_id=refund.refund_id).first()
        if note is not None:  # numbered by an earlier attempt: the lock made us wait for it
            return note
        sequence.last += 1
        sequence.save(update_fields=["last"])
        return CreditNote.objects.create(
            sequence=sequence.last,
            order=order,
            refund_id=refund.refund_id,
            receipt=Receipt.objects.filter(order=order, stored_at__isnull=False).first(),
        )


def credit_note_document(order: Order, note: CreditNote, refund: RefundMade) -> CreditNoteDocument:
    """What this credit note shows."""
    return CreditNoteDocument(
        number=note.number,
        issued_at=note.created_at,
        shop_name=settings.SHOP_NAME,
        shop_address=settings.SHOP_ADDRESS,
        shop_tax_id=settings.SHOP_TAX_ID,
        order_reference=order.reference,
        receipt_number=note.receipt.number if note.receipt else "",
        customer_email=order.email,
        currency=refund.currency,
        lines=receipt_lines(order),
        order_total=order.total,
        amount=refund.amount,
        refunded_total=refund.refunded_total,
        reason=refund.reason,
    )


def issue_credit_note(order: Order, refund: RefundMade) -> CreditNote:
    """Number, render and store the refund's credit note, once; a repeat returns the stored one."""
    note = number_credit_note(order, refund)
    if note.stored_at:
        return note
    key = f"credit-notes/{note.created_at:%Y}/{note.created_at:%m}/{note.number}.pdf"
    stored = store_whole_pdf(key, lambda: render_credit_note_pdf(credit_note_document(order, note, refund)))
    return record_stored(note, key, stored)


def credit_note_filename(note: CreditNote) -> str:
    """The name a downloaded credit note is saved under."""
    return f"credit-note-{note.number}.pdf"


def credit_note_download_url(note: CreditNote, *, base_url: str = "") -> str:
    """A freshly signed link to the credit note, expiring like a receipt's (RECEIPT_LINK_TTL_SECONDS)."""
    return signed_document_url(
        note.storage_key,
        note.link_id,
        credit_note_filename(note),
        salt=LINK_SALT,
        url_name="credit-note-download",
        base_url=base_url,
    )


def credit_note_for_link(token: str) -> CreditNote:
    """The credit note a signed local link points to; refuses tampered and expired links."""
    link_id = link_id_of(token, salt=LINK_SALT, document="credit note")
    note = CreditNote.objects.filter(link_id=link_id, stored_at__isnull=False).first()
    if note is None:
        raise InvalidReceiptLink("This credit note link is not valid.")
    return note
