"""Who bears METRICS_TOKEN: the one secret that opens the operators' readings (/metrics and
the details of /health/ready) to a poller that cannot log in."""

import hmac

from django.conf import settings
from django.http import HttpRequest


def bearer_token(request: HttpRequest) -> str | None:
    """The token of an `Authorization: Bearer ...` header, or None without one."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return None
    return given.strip()


def bears_metrics_token(request: HttpRequest) -> bool:
    """True when METRICS_TOKEN is set and the request carries it (compared in constant time)."""
    token = settings.METRICS_TOKEN
    given = bearer_token(request)
    return bool(token) and given is not None and hmac.compare_digest(given.encode(), token.encode())
