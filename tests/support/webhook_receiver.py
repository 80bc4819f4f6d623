"""A partner's webhook receiver: a local HTTP server that records every POST it is sent and
answers what the test tells it (200, a run of 500s, or no answer at all)."""

import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def docs_verifier():
    """The `verify` function of docs/webhooks.md's ten-line example, as the docs print it."""
    code = re.search(r"```python\n(.*?)```", DOCS.read_text(), re.S).group(1)
    assert len([line for line in code.splitlines() if line.strip()]) <= 10, "the docs promise ten lines"
    namespace: dict = {}
    exec(code, namespace)
    return namespace["verify"]


@dataclass(frozen=True)
class Received:
    headers: dict
    body: bytes
    status: int  # what the receiver answered

    @property
    def event(self) -> dict:
        return json.loads(self.body)


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.failures_left = 0  # answer 500 to this many POSTs first
        self.delay = 0.0  # take this long over each answer (after taking the event in)
        self.hang = threading.Event()  # set: hold every request without answering
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.hang.is_set():
                    threading.Event().wait(30)  # holds the request: the sender's read timeout ends it
                    return
                with receiver.lock:
                    status = 500 if receiver.failures_left > 0 else 200
                    receiver.failures_left = max(receiver.failures_left - 1, 0)
                    receiver.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body, status))
                # Taken in: a sender killed while it waits never learns, and sends it again (same id).
                threading.Event().wait(receiver.delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    self.wfile.write(b"thanks" if status == 200 else b"down for maintenance")
                except OSError:
                    pass  # the sender is gone

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accepted(self) -> list[Received]:
        """The POSTs it answered 200, in the order they came."""
        with self.lock:
            return [r for r in self.received if r.status == 200]

    def accepted_types(self, key: str | None = None) -> list[str]:
        return [r.event["type"] for r in self.accepted() if key is None or r.event["data"].get("reference") == key]

    def close(self) -> None:
        self.hang.clear()
        self.server.shutdown()
        self.server.server_close()
