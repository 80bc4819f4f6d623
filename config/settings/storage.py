"""Where files go: receipts (private), uploaded media, and the built static files.

Receipts are private: with a bucket they go to S3 (django-storages' own variable names),
otherwise to local files outside any public URL; either way they are downloaded only
through signed links that expire after RECEIPT_LINK_TTL_SECONDS.
"""

import os
from collections.abc import Mapping

from botocore.config import Config

from config.env import env_int, env_secret, env_str

from .base import VAR_DIR


def receipt_storage_from_env(environ: Mapping[str, str]) -> dict:
    """The STORAGES entry of receipts for these environment variables.

    A function of its mapping rather than of os.environ, so tests can build the S3 entry
    for a local server without starting a new process.
    """
    if bucket := env_str("AWS_STORAGE_BUCKET_NAME", environ=environ):
        timeout = env_int("RECEIPT_STORAGE_TIMEOUT_SECONDS", 5, environ=environ)
        return {
            "BACKEND": "receipts.storage.ReceiptS3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                # Unset or empty: None, so boto3 picks its own default (AWS, the usual
                # credential chain, the addressing style it prefers).
                "endpoint_url": env_str("AWS_S3_ENDPOINT_URL", environ=environ) or None,
                "region_name": env_str("AWS_S3_REGION_NAME", environ=environ) or None,
                "access_key": env_secret("AWS_ACCESS_KEY_ID", environ=environ) or None,
                "secret_key": env_secret("AWS_SECRET_ACCESS_KEY", environ=environ) or None,
                "addressing_style": env_str("AWS_S3_ADDRESSING_STYLE", environ=environ) or None,
                # botocore's defaults (60 s to connect, 60 s to read, tries with backoff between)
                # held a worker through every failing store while S3 was unreachable, and the
                # payments of other orders waited for workers (5 taken in a 15 s outage, against
                # 45 with local files). One try with short timeouts: the pipeline's own retries
                # (a ScheduledRetry, no worker held) take it from there. Given a client config,
                # django-storages no longer builds its own, so this one says everything.
                "client_config": Config(
                    connect_timeout=timeout,
                    read_timeout=timeout,
                    retries={"mode": "standard", "max_attempts": 1},
                    s3={"addressing_style": env_str("AWS_S3_ADDRESSING_STYLE", environ=environ) or None},
                    signature_version="s3v4",
                ),
                "default_acl": "private",
                "querystring_auth": True,
                # A stored receipt is never replaced (ReceiptS3Storage adds the conditional put).
                "file_overwrite": False,
                "signature_version": "s3v4",
                "querystring_expire": env_int("RECEIPT_LINK_TTL_SECONDS", 300, environ=environ),
            },
        }
    return {
        "BACKEND": "receipts.storage.ReceiptFileStorage",
        "OPTIONS": {"location": str(VAR_DIR / "private")},
    }


AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
RECEIPT_STORAGE = receipt_storage_from_env(os.environ)
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "media")},
    },
    "receipts": RECEIPT_STORAGE,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
RECEIPT_LINK_TTL_SECONDS = env_int("RECEIPT_LINK_TTL_SECONDS", 300)
