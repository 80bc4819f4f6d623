"""Where receipts are kept: a write is whole or absent, and never replaces a receipt.

On S3 a PUT is atomic and `If-None-Match: *` refuses a taken key; on local files the PDF is
written under a temporary name and linked into place, which is atomic and fails when the
name is taken, so a full disk or a killed worker never leaves a cut receipt at its key.
"""

import contextlib
import os
import tempfile

from botocore.exceptions import ClientError
from django.core.files.storage import FileSystemStorage
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


class ReceiptFileStorage(FileSystemStorage):
    """Private receipts in local files, each written whole or not at all, never replaced."""

    def _save(self, name, content):
        path = self.path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        descriptor, partial = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".partial-")
        try:
            with os.fdopen(descriptor, "wb") as file:
                content.seek(0)
                file.write(content.read())
                file.flush()
                os.fsync(file.fileno())
            # Atomic, and refuses a name already taken: another attempt stored it first, keep that one.
            with contextlib.suppress(FileExistsError):
                os.link(partial, path)
        finally:
            os.unlink(partial)
        return name
