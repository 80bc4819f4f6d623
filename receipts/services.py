"""Receipts: number, render, store privately, and hand out short-lived download links."""

from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from orders.models import Order
from receipts.models import Receipt
from receipts.rendering import render_receipt_pdf

LINK_SALT = "receipts.download"


def receipt_storage():
    return storages["receipts"]


def receipt_key(order: Order, receipt: Receipt) -> str:
    """Where a receipt lives in storage: receipts/<year>/<month>/<reference>.pdf."""
    return f"receipts/{receipt.created_at:%Y}/{receipt.created_at:%m}/{order.reference}.pdf"


def issue_receipt(order: Order) -> Receipt:
    """Number, render and store the order's receipt, once; a repeat returns the stored one."""
    try:
        receipt, _ = Receipt.objects.get_or_create(order=order)
    except IntegrityError:  # another worker created it a moment ago
        receipt = Receipt.objects.get(order=order)
    if receipt.stored_at:
        return receipt
    pdf = render_receipt_pdf(order, receipt_number=receipt.number, issued_at=receipt.created_at)
    storage = receipt_storage()
    key = receipt_key(order, receipt)
    # Never overwrite: a stored receipt from an attempt whose worker died is kept as it is.
    name = key if storage.exists(key) else storage.save(key, ContentFile(pdf))
    with transaction.atomic():
        Receipt.objects.filter(pk=receipt.pk, stored_at__isnull=True).update(
            storage_key=name, size=len(pdf), stored_at=timezone.now()
        )
    receipt.refresh_from_db()
    return receipt


def receipt_download_url(receipt: Receipt, *, base_url: str = "") -> str:
    """A freshly signed link to the receipt that expires after RECEIPT_LINK_TTL_SECONDS.

    On S3 it is a presigned URL; on local storage a link to this app, signed by Django.
    """
    storage = receipt_storage()
    if hasattr(storage, "bucket_name"):
        return storage.url(receipt.storage_key, expire=settings.RECEIPT_LINK_TTL_SECONDS)
    token = signing.dumps({"receipt": receipt.pk, "key": receipt.storage_key}, salt=LINK_SALT, compress=True)
    return base_url + reverse("receipt-download", args=[token])


class InvalidReceiptLink(Exception):
    pass


def receipt_for_link(token: str) -> Receipt:
    """The receipt a signed local link points to; refuses tampered and expired links."""
    try:
        data = signing.loads(token, salt=LINK_SALT, max_age=settings.RECEIPT_LINK_TTL_SECONDS)
    except signing.SignatureExpired as exc:
        raise InvalidReceiptLink("This receipt link has expired.") from exc
    except signing.BadSignature as exc:
        raise InvalidReceiptLink("This receipt link is not valid.") from exc
    receipt = Receipt.objects.filter(pk=data.get("receipt"), storage_key=data.get("key")).first()
    if receipt is None:
        raise InvalidReceiptLink("This receipt link is not valid.")
    return receipt
