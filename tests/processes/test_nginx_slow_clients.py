"""nginx in front of gunicorn (the documented deployment): shoppers are served while slow
clients trickle their headers, which stall gunicorn's workers when they face clients."""

import contextlib
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.nginx import start_nginx
from tests.support.ordering import post_order

pytestmark = pytest.mark.slow

SLOW_CLIENTS = 4  # twice gunicorn's two sync workers


@contextlib.contextmanager
def trickling_clients(url: str, count: int):
    """`count` connections sending a request's headers a few bytes a second, never finishing."""
    host, port = url.removeprefix("http://").split(":")
    stop = threading.Event()
    sockets = []

    def trickle(sock):
        with contextlib.suppress(OSError):
            sock.sendall(b"POST /api/orders/ HTTP/1.1\r\nHost: shop\r\n")
            while not stop.wait(0.5):
                sock.sendall(b"X-Slow: y\r\n")

    for _ in range(count):
        sock = socket.create_connection((host, int(port)))
        sockets.append(sock)
        threading.Thread(target=trickle, args=(sock,), daemon=True).start()
    time.sleep(0.5)  # the slow clients are in before the shoppers come
    try:
        yield
    finally:
        stop.set()
        for sock in sockets:
            sock.close()


def shoppers_answered(url: str, count: int, within: float) -> int:
    """How many of `count` shoppers placing an order at once get their 202 within `within` s."""

    def place(_):
        try:
            return post_order(url, timeout=within).status_code == 202
        except requests.RequestException:
            return False

    with ThreadPoolExecutor(count) as pool:
        return sum(pool.map(place, range(count)))


def test_shoppers_are_served_through_nginx_while_slow_clients_trickle_headers(shop, make_product, tmp_path):
    make_product("MUG-001", on_hand=100)
    web = shop.start_web(workers=2, threads=1)  # gunicorn's sync workers, one request each
    front = start_nginx(shop, tmp_path, web)

    with trickling_clients(front, SLOW_CLIENTS):
        started = time.monotonic()
        answered = shoppers_answered(front, 3, within=10)
        took = time.monotonic() - started

    assert answered == 3
    assert took < 5


def test_without_nginx_the_same_slow_clients_stall_every_worker(shop, make_product, tmp_path):
    """The figure the proxy answers: gunicorn facing the slow clients itself serves nobody."""
    make_product("MUG-001", on_hand=100)
    web = shop.start_web(workers=2, threads=1)

    with trickling_clients(web, SLOW_CLIENTS):
        answered = shoppers_answered(web, 3, within=5)

    assert answered == 0
