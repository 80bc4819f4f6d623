"""Credit notes on S3 (ministack with AUTH=true on loopback): private objects, presigned links, as receipts."""

import re
from decimal import Decimal

import requests
from django.conf import settings
from django.core import mail

from backoffice.actions import refund_order
from receipts.models import CreditNote


def test_a_refunds_credit_note_is_a_private_object_reached_through_a_fresh_presigned_link(
    api, shopper, make_product, local_aws, receipts_on_s3
):
    make_product("MUG-001", price="12.50", on_hand=5)
    order = shopper.buys({"MUG-001": 2})
    mail.outbox.clear()

    refund_order(order, manager="morgan", reason="chipped", refund_reason="damaged", amount=Decimal("12.50"))

    note = CreditNote.objects.get()
    assert re.fullmatch(r"credit-notes/\d{4}/\d{2}/CN-00000001\.pdf", note.storage_key)
    body = local_aws.client("s3").get_object(Bucket=receipts_on_s3, Key=note.storage_key)["Body"].read()
    assert body.startswith(b"%PDF") and note.size == len(body)
    anonymous = requests.get(f"{local_aws.endpoint_url}/{receipts_on_s3}/{note.storage_key}", timeout=5)
    assert anonymous.status_code == 403

    [email] = mail.outbox
    [link] = re.findall(r"Your credit note CN-00000001: (\S+)", email.body)
    presigned = api.get(link.removeprefix(settings.PUBLIC_BASE_URL))["Location"]
    assert presigned.startswith(f"{local_aws.endpoint_url}/{receipts_on_s3}/credit-notes/")
    assert "X-Amz-Signature=" in presigned and "X-Amz-Expires=" in presigned
    downloaded = requests.get(presigned, timeout=5)
    assert downloaded.status_code == 200 and downloaded.content == body
