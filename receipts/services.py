"""Receipts: number, render, store privately, and hand out short-lived download links."""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeGuard, TypeVar

from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.urls import reverse
from django.utils import timezone
from storages.backends.s3 import S3Storage

from framework import metrics
from framework.formatting import format_percent
from framework.inserts import insert_if_absent
from orders.models import Order
from receipts.models import Receipt, StoredDocument
from receipts.rendering import ReceiptDocument, ReceiptLine, render_receipt_pdf

LINK_SALT = "receipts.download"


def receipt_storage() -> Storage:
    """Where receipts are kept: S3 when a bucket is configured, private local files otherwise."""
    return storages["receipts"]


def receipt_key(order: Order, receipt: Receipt) -> str:
    """Where a receipt lives in storage: receipts/<year>/<month>/<reference>.pdf."""
    return f"receipts/{receipt.created_at:%Y}/{receipt.created_at:%m}/{order.reference}.pdf"


@dataclass(frozen=True)
class PaidWith:
    """How the order was paid, as its receipt prints it; receipts know nothing else of payments."""

    card_brand: str = ""
    card_last4: str = ""
    reference: str = ""


def receipt_lines(order: Order) -> tuple[ReceiptLine, ...]:
    """The order's lines as its documents (receipt, credit notes) print them."""
    return tuple(
        ReceiptLine(
            sku=line.sku,
            name=line.name,
            quantity=line.quantity,
            unit_price=line.unit_price,
            line_total=line.line_total,
        )
        for line in order.lines.all()
    )


def receipt_document(order: Order, receipt: Receipt, paid_with: PaidWith = PaidWith()) -> ReceiptDocument:
    """What the receipt of this order shows: the shop, the order, its lines, totals and how it was paid."""
    return ReceiptDocument(
        number=receipt.number,
        issued_at=receipt.created_at,
        shop_name=settings.SHOP_NAME,
        shop_address=settings.SHOP_ADDRESS,
        shop_tax_id=settings.SHOP_TAX_ID,
        order_reference=order.reference,
        ordered_at=order.created_at,
        customer_email=order.email,
        currency=order.currency,
        lines=receipt_lines(order),
        subtotal=order.subtotal,
        tax_rate_percent=format_percent(order.tax_rate),
        tax=order.tax,
        total=order.total,
        card_brand=paid_with.card_brand,
        card_last4=paid_with.card_last4,
        payment_reference=paid_with.reference,
    )


def issue_receipt(order: Order, paid_with: PaidWith = PaidWith()) -> Receipt:
    """Number, render and store the order's receipt, once; a repeat returns the stored one."""
    # Numbered once: the unique order decides between racing workers; a row already there
    # (an earlier attempt's, another worker's) is the receipt.
    receipt = Receipt(order=order)
    if not insert_if_absent(receipt):
        receipt = Receipt.objects.get(order=order)
    if receipt.stored_at:
        return receipt
    key = receipt_key(order, receipt)
    stored = store_whole_pdf(key, lambda: render_receipt_pdf(receipt_document(order, receipt, paid_with)))
    return record_stored(receipt, key, stored)


Document = TypeVar("Document", bound=StoredDocument)


def record_stored(document: Document, key: str, stored: bytes) -> Document:
    """Record on the document's row what the storage holds at `key` (perhaps an earlier
    attempt's rendering), once: a row another worker recorded first is the truth."""
    recorded = {
        "storage_key": key,
        "size": len(stored),
        "sha256": hashlib.sha256(stored).hexdigest(),
        "stored_at": timezone.now(),
    }
    # One statement, atomic on its own: the row's `stored_at` decides between racing workers.
    if type(document)._default_manager.filter(pk=document.pk, stored_at__isnull=True).update(**recorded):
        for field, value in recorded.items():
            setattr(document, field, value)
        return document
    document.refresh_from_db()
    return document


def store_whole_pdf(key: str, render: Callable[[], bytes]) -> bytes:
    """The whole PDF at `key`: the one stored already, else `render()`'s, written and read back.

    The storage is asked first: while it is down an attempt fails before it costs a
    rendering (the workers stay free for payments), and one that finds an earlier attempt's
    document whole needs none. Raises `ReceiptNotStored` when the write does not read back whole.
    """
    storage = receipt_storage()
    stored = _stored_pdf(storage, key)
    if stored is None:
        with metrics.RECEIPT_RENDER.time():
            pdf = render()
        metrics.RECEIPTS_RENDERED.inc()
        # Nothing whole at the key (nothing, or a cut file no row ever called stored): write it.
        if storage.exists(key):
            storage.delete(key)
        storage.save(key, ContentFile(pdf))
        stored = _stored_pdf(storage, key)
        if stored is None:
            raise ReceiptNotStored(f"{key}: the stored document reads back incomplete")
    return stored


class ReceiptNotStored(Exception):
    """The storage took the receipt but does not give it back whole; the step retries."""


def _stored_pdf(storage: Storage, key: str) -> bytes | None:
    """The PDF kept at `key` if it is whole (a PDF header, its end-of-file marker), else None."""
    if not storage.exists(key):
        return None
    with storage.open(key, "rb") as file:
        content = file.read()
    return content if is_whole_pdf(content) else None


def is_whole_pdf(content: bytes) -> bool:
    """Whether these bytes are a complete PDF file, not an empty or cut one."""
    return content.startswith(b"%PDF-") and content.rstrip().endswith(b"%%EOF")


def _is_object_storage(storage: Storage) -> TypeGuard[S3Storage]:
    """S3 signs its own links; any other storage is served by this app behind a signed token."""
    return isinstance(storage, S3Storage)


def receipt_download_url(receipt: Receipt, *, base_url: str = "") -> str:
    """A freshly signed link to the receipt that expires after RECEIPT_LINK_TTL_SECONDS.

    On S3 it is a presigned (SigV4) URL straight to the private object; on local storage a
    link to this app, signed by Django. `base_url` makes the local link absolute.
    """
    return signed_document_url(
        receipt.storage_key,
        receipt.link_id,
        receipt_filename(receipt),
        salt=LINK_SALT,
        url_name="receipt-download",
        base_url=base_url,
    )


def signed_document_url(
    storage_key: str, link_id: str, filename: str, *, salt: str, url_name: str, base_url: str = ""
) -> str:
    """A short-lived link to a stored document: presigned on S3, else to `url_name` with a signed token."""
    storage = receipt_storage()
    if _is_object_storage(storage):
        url: str = storage.url(
            storage_key,
            expire=settings.RECEIPT_LINK_TTL_SECONDS,
            parameters={
                "ResponseContentType": "application/pdf",
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
        )
        return url
    # The token carries the document's random link id and the time it was signed, nothing
    # else: no order reference, no document number, no storage key.
    token = signing.TimestampSigner(salt=salt).sign(link_id)
    return base_url + reverse(url_name, args=[token])


def receipt_filename(receipt: Receipt) -> str:
    """The name a downloaded receipt is saved under."""
    return f"receipt-{receipt.order.reference}.pdf"


class InvalidReceiptLink(Exception):
    pass


def link_id_of(token: str, *, salt: str, document: str = "receipt") -> str:
    """The link id a signed local link carries; refuses tampered and expired links."""
    try:
        return signing.TimestampSigner(salt=salt).unsign(token, max_age=settings.RECEIPT_LINK_TTL_SECONDS)
    except signing.SignatureExpired as exc:
        raise InvalidReceiptLink(f"This {document} link has expired.") from exc
    except signing.BadSignature as exc:
        raise InvalidReceiptLink(f"This {document} link is not valid.") from exc


def receipt_for_link(token: str) -> Receipt:
    """The receipt a signed local link points to; refuses tampered and expired links."""
    link_id = link_id_of(token, salt=LINK_SALT)
    receipt = Receipt.objects.select_related("order").filter(link_id=link_id, stored_at__isnull=False).first()
    if receipt is None:
        raise InvalidReceiptLink("This receipt link is not valid.")
    return receipt
