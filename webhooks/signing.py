"""Signatures in the Standard Webhooks shape (https://www.standardwebhooks.com/): the
headers `webhook-id`, `webhook-timestamp` and `webhook-signature`, the last one
`v1,<base64 of HMAC-SHA256 over "id.timestamp.body">` keyed with the secret's bytes.
docs/webhooks.md has the receiver's side in ten lines."""

import base64
import hashlib
import hmac


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header of this body sent as `message_id` at `timestamp`."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one delivery: its id (the same on every attempt), time and signature."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }
