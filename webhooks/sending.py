"""One POST to a receiver, with short timeouts, to an address `webhooks.addresses` allowed,
following no redirect (http.client never does). Nothing here touches the database."""

import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from webhooks.addresses import AddressRefused, allowed_addresses

ANSWER_EXCERPT = 500


@dataclass(frozen=True)
class Answer:
    """What came of one POST: the status (None when no answer came), an excerpt, an error."""

    status: int | None
    excerpt: str = ""
    error: str = ""
    refused: bool = False  # the address was not allowed: nothing was sent
    duration_ms: int = 0

    @property
    def delivered(self) -> bool:
        # Any 2xx; a redirect is not followed, so it is not a delivery.
        return self.status is not None and 200 <= self.status < 300


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the checked address, whatever the host name resolves to by now."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    """POST `body` to `url`; never raises for the receiver's sake, the `Answer` says what happened."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        host, port, addresses = allowed_addresses(url)
    except AddressRefused as error:
        return Answer(None, error=str(error), refused=True, duration_ms=elapsed())
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    kind = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
    connection = kind(host, port, addresses[0], settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS)
    try:
        connection.connect()
        # Connected: from now on the receiver gets the read timeout between bytes.
        connection.sock.settimeout(settings.WEBHOOK_READ_TIMEOUT_SECONDS)
        all_headers = {"Content-Type": "application/json", "User-Agent": f"{settings.SHOP_NAME} webhooks", **headers}
        connection.request("POST", path, body=body, headers=all_headers)
        response = connection.getresponse()
        excerpt = response.read(ANSWER_EXCERPT * 4).decode("utf-8", "replace")[:ANSWER_EXCERPT]
        return Answer(response.status, excerpt, duration_ms=elapsed())
    except (OSError, http.client.HTTPException) as error:
        return Answer(None, error=f"{type(error).__name__}: {error}"[:500], duration_ms=elapsed())
    finally:
        connection.close()
