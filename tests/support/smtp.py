"""An SMTP server on loopback for the tests (aiosmtpd), which can be stopped and restarted.

The app sends through Django's own SMTP backend, configured with Django's setting names,
exactly as in production; the server records every message it accepts.
"""

import asyncio
import email
import email.policy
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from django.db import connection

from tests.support.waiting import wait_until


@dataclass(frozen=True)
class ReceivedEmail:
    mail_from: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return self.message["Subject"]

    def part(self, content_type: str) -> str:
        """The decoded body part of this type ("text/plain", "text/html")."""
        for part in self.message.walk():
            if part.get_content_type() == content_type:
                return part.get_content()
        raise AssertionError(f"no {content_type} part in {self.subject!r}")


class RecordingHandler:
    """Accepts every message, optionally slowly: `delay_seconds` before taking it (to hold a
    sender in the middle of a send), `answer_delay_seconds` after storing it and before
    answering DATA (a server that keeps the message but answers late)."""

    def __init__(self):
        self.received: list[ReceivedEmail] = []
        self.delay_seconds = 0.0
        self.answer_delay_seconds = 0.0

    async def handle_DATA(self, server, session, envelope):
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        self.received.append(ReceivedEmail(envelope.mail_from, list(envelope.rcpt_tos), message))
        if self.answer_delay_seconds:
            await asyncio.sleep(self.answer_delay_seconds)
        return "250 Message accepted for delivery"


class _ListeningController(Controller):
    """A Controller that binds its own socket, so port 0 gives an ephemeral port it can report
    and a restart can take the same port again."""

    def _create_server(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.hostname, self.port))
        self.port = sock.getsockname()[1]
        return self.loop.create_server(self._factory_invoker, sock=sock, ssl=self.ssl_context)


class LocalSmtp:
    """An SMTP server on 127.0.0.1 that keeps its port across stop() and start()."""

    def __init__(self):
        self.handler = RecordingHandler()
        self.port = 0
        self._controller: Controller | None = None

    @property
    def received(self) -> list[ReceivedEmail]:
        return self.handler.received

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        controller = _ListeningController(self.handler, hostname="127.0.0.1", port=self.port, ready_timeout=10)
        controller.start()
        self.port = controller.port
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def start_when(self, condition: Callable[[], bool], *, within: float = 30) -> threading.Thread:
        """Come back up, from a thread, as soon as `condition()` holds (checked every 50 ms)."""

        def start() -> None:
            try:
                wait_until(condition, timeout=within, interval=0.05)
            except AssertionError:
                return  # it stays down: the test's own assertions tell what went wrong
            else:
                self.start()
            finally:
                connection.close()  # the condition may have read the database from this thread

        thread = threading.Thread(target=start, name="smtp-restart", daemon=True)
        thread.start()
        return thread


@pytest.fixture
def smtp_server(settings):
    """An SMTP server on loopback, and the app configured to send through it with SMTP."""
    server = LocalSmtp()
    server.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    try:
        yield server
    finally:
        server.stop()
