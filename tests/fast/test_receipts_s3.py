"""Receipts on S3 (ministack with AUTH=true on loopback): private objects, presigned links."""

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from django.core import mail
from django.core.files.base import ContentFile

from orders.models import Order, OrderEvent
from orders.tasks import sweep_stuck_orders
from receipts.services import issue_receipt, receipt_download_url, receipt_storage
from tests.support.due_retries import run_due_retries
from tests.support.settings_probe import in_fresh_process
from tests.support.waiting import wait_until


def place_completed_order(make_product, shopper, *, email="shopper@example.com") -> Order:
    make_product("MUG-001", price="12.50", on_hand=5)
    order = shopper.buys({"MUG-001": 2}, email=email)
    assert order.state == "COMPLETED"
    return order


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_a_completed_order_keeps_its_receipt_as_a_private_object_under_year_month_reference(
    shopper, make_product, local_aws, receipts_on_s3
):
    order = place_completed_order(make_product, shopper)

    receipt = order.receipt
    created = receipt.created_at
    assert receipt.storage_key == f"receipts/{created:%Y}/{created:%m}/{order.reference}.pdf"
    s3 = local_aws.client("s3")
    stored = s3.get_object(Bucket=receipts_on_s3, Key=receipt.storage_key)
    body = stored["Body"].read()
    assert body.startswith(b"%PDF")
    assert stored["ContentType"] == "application/pdf"
    assert receipt.size == len(body)
    grants = s3.get_object_acl(Bucket=receipts_on_s3, Key=receipt.storage_key)["Grants"]
    assert all("URI" not in grant["Grantee"] for grant in grants), grants  # no AllUsers / AuthenticatedUsers

    anonymous = requests.get(f"{local_aws.endpoint_url}/{receipts_on_s3}/{receipt.storage_key}", timeout=5)
    assert anonymous.status_code == 403


def test_the_shoppers_receipt_url_is_a_fresh_presigned_link_returning_the_stored_bytes(
    api, shopper, make_product, local_aws, receipts_on_s3
):
    order = place_completed_order(make_product, shopper)
    stored = local_aws.client("s3").get_object(Bucket=receipts_on_s3, Key=order.receipt.storage_key)["Body"].read()

    receipt_url = api.get(f"/api/orders/{order.reference}/").json()["receipt_url"]

    assert receipt_url.startswith(f"{local_aws.endpoint_url}/{receipts_on_s3}/receipts/")
    query = dict(parse_qsl(urlsplit(receipt_url).query))
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == "300"
    download = requests.get(receipt_url, timeout=5)
    assert download.status_code == 200
    assert download.content == stored
    assert download.headers["Content-Type"] == "application/pdf"
    assert "attachment" in download.headers["Content-Disposition"]

    redirect = api.get(f"/api/orders/{order.reference}/receipt")
    assert redirect.status_code == 302
    assert requests.get(redirect["Location"], timeout=5).content == stored


def test_an_expired_presigned_receipt_link_is_refused(shopper, make_product, settings, receipts_on_s3):
    order = place_completed_order(make_product, shopper)
    settings.RECEIPT_LINK_TTL_SECONDS = 1
    link = receipt_download_url(order.receipt)
    assert dict(parse_qsl(urlsplit(link).query))["X-Amz-Expires"] == "1"

    wait_until(
        lambda: requests.get(link, timeout=5).status_code == 403,
        timeout=settings.RECEIPT_LINK_TTL_SECONDS + 10,
        message="the presigned link still works past its lifetime",
    )

    refused = requests.get(link, timeout=5)
    assert refused.status_code == 403
    assert b"expired" in refused.content


def test_a_tampered_presigned_receipt_link_is_refused(shopper, make_product, receipts_on_s3):
    order = place_completed_order(make_product, shopper)
    link = receipt_download_url(order.receipt)
    signature = dict(parse_qsl(urlsplit(link).query))["X-Amz-Signature"]

    longer_life = with_query(link, **{"X-Amz-Expires": "604800"})
    forged_signature = with_query(link, **{"X-Amz-Signature": ("0" if signature[0] != "0" else "1") + signature[1:]})
    other_key = link.replace(order.reference, order.reference[:-1] + ("A" if order.reference[-1] != "A" else "B"))

    for tampered in (longer_life, forged_signature, other_key):
        response = requests.get(tampered, timeout=5)
        assert response.status_code == 403, tampered
        assert b"SignatureDoesNotMatch" in response.content
    assert requests.get(link, timeout=5).status_code == 200


def test_a_stored_receipt_is_never_overwritten(shopper, make_product, local_aws, receipts_on_s3):
    order = place_completed_order(make_product, shopper)
    key = order.receipt.storage_key
    s3 = local_aws.client("s3")
    original = s3.get_object(Bucket=receipts_on_s3, Key=key)["Body"].read()

    # A second writer that lost the race to the same key (its existence check came too early).
    receipt_storage()._save(key, ContentFile(b"%PDF-1.7 a different receipt"))
    # The step running again for the same order.
    again = issue_receipt(order)

    assert again.storage_key == key
    assert s3.get_object(Bucket=receipts_on_s3, Key=key)["Body"].read() == original
    listed = s3.list_objects_v2(Bucket=receipts_on_s3, Prefix="receipts/")["Contents"]
    assert [item["Key"] for item in listed] == [key]


STORAGE_OPTIONS = """
from receipts.services import receipt_storage
storage = receipt_storage()
result = {"class": type(storage).__name__}
if result["class"] == "ReceiptS3Storage":
    result.update(
        bucket=storage.bucket_name, endpoint=storage.endpoint_url, region=storage.region_name,
        access_key=storage.access_key, acl=storage.default_acl, signed=storage.querystring_auth,
        overwrite=storage.file_overwrite, expire=storage.querystring_expire,
        signature=storage.signature_version, ttl=settings.RECEIPT_LINK_TTL_SECONDS,
    )
"""


def test_a_bucket_in_the_environment_switches_receipts_to_private_s3_with_short_signed_links(tmp_path):
    environ = {
        "AWS_STORAGE_BUCKET_NAME": "shop-receipts",
        "AWS_S3_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_S3_REGION_NAME": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "RECEIPT_LINK_TTL_SECONDS": "120",
    }

    assert in_fresh_process(tmp_path, environ, STORAGE_OPTIONS) == {
        "class": "ReceiptS3Storage",
        "bucket": "shop-receipts",
        "endpoint": "http://127.0.0.1:9",
        "region": "eu-west-1",
        "access_key": "AKIDEXAMPLE",
        "acl": "private",
        "signed": True,
        "overwrite": False,
        "expire": 120,
        "signature": "s3v4",
        "ttl": 120,
    }


def test_without_a_bucket_receipts_stay_in_private_local_files(tmp_path):
    assert in_fresh_process(tmp_path, {}, STORAGE_OPTIONS) == {"class": "ReceiptFileStorage"}


def test_a_receipt_that_cannot_be_stored_never_undoes_the_sale_and_flags_the_order(
    shopper, make_product, local_aws, receipts_on_s3, settings
):
    local_aws.client("s3").delete_bucket(Bucket=receipts_on_s3)  # the bucket is gone

    make_product("MUG-001", on_hand=5)
    order = shopper.buys({"MUG-001": 2})
    run_due_retries()

    order.refresh_from_db()
    assert order.state == "CONFIRMED"
    assert order.needs_attention
    assert order.payment.status == "captured"
    attempts = OrderEvent.objects.filter(order=order, step="generate_receipt")
    assert [e.outcome for e in attempts] == ["retrying", "retrying", "failed"]
    assert "NoSuchBucket" in attempts.last().error
    assert mail.outbox == []  # the confirmation waits for its receipt

    # The bucket is back; the sweeper re-drives the order to its receipt and its email.
    local_aws.client("s3").create_bucket(Bucket=receipts_on_s3)
    settings.ORDER_STUCK_AFTER_SECONDS = 0
    sweep_stuck_orders()

    order.refresh_from_db()
    assert order.state == "COMPLETED"
    assert order.receipt.storage_key
    assert len(mail.outbox) == 1
