"""Receipts on S3: django-storages' S3Storage, except that a write never replaces an object."""

from botocore.exceptions import ClientError
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

# What S3 answers when `If-None-Match: *` finds the key taken (or being written).
KEY_TAKEN = {"PreconditionFailed", "ConditionalRequestConflict"}


class ReceiptS3Storage(S3Storage):
    """Private receipts in a bucket, written with `If-None-Match: *`.

    `file_overwrite=False` alone checks for the key and then uploads, so two workers
    storing the same receipt at the same moment could both write it. The conditional
    put lets the first write win; the second finds the receipt there and keeps it.
    Receipts are small, so one PUT (no multipart upload) carries each of them.
    """

    def _save(self, name, content):
        cleaned = clean_name(name)
        key = self._normalize_name(cleaned)
        params = self._get_write_parameters(key, content)
        content.seek(0)
        try:
            self.bucket.Object(key).put(Body=content.read(), IfNoneMatch="*", **params)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in KEY_TAKEN:
                raise
        return cleaned
