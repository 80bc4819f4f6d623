"""A network link a test can cut: a TCP forwarder on loopback between the shop and a server.

The shop is pointed at the link's address instead of the server's; `cut()` drops every open
connection and refuses new ones (a server gone from the network, as the shop sees it),
`mend()` forwards again. Bytes pass unchanged, so what the server checks (an S3 request's
signature over its Host) holds through the link.
"""

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import pytest


class CuttableLink:
    """Forwards connections on 127.0.0.1:<port> to `target` until cut."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._up = threading.Event()
        self._up.set()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Drop every connection through the link and refuse new ones until mended."""
        self._up.clear()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def mend(self) -> None:
        self._up.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up.is_set():
                client.close()  # the server is unreachable: the connection goes nowhere
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)


@pytest.fixture
def cuttable_link() -> Iterator[Callable[[str, int], CuttableLink]]:
    """Make links to servers (`cuttable_link(host, port)`); all closed after the test."""
    made: list[CuttableLink] = []

    def make(host: str, port: int) -> CuttableLink:
        made.append(CuttableLink(host, port))
        return made[-1]

    try:
        yield make
    finally:
        for link in made:
            link.close()
