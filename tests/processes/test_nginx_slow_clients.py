"""nginx in front of gunicorn (the documented deployment): shoppers are served while slow
clients trickle their headers, which stall gunicorn's workers when they face clients."""

import contextlib
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.support.ordering import post_order
from tests.support.processes import PROJECT_DIR, Process, wait_until

pytestmark = pytest.mark.slow

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PROXY_SNIPPET = PROJECT_DIR / "deploy" / "nginx" / "shop-proxy.conf"
SLOW_CLIENTS = 4  # twice gunicorn's two sync workers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nginx(shop, tmp_path, upstream_port: int) -> str:
    """nginx on a free loopback port, proxying to the shop with the shipped snippet; the
    shop fixture stops it with the shop's other processes."""
    if not Path(NGINX).exists():
        pytest.fail("Debian's nginx is not installed (apt-get install nginx); .ci/run installs it.")
    port = free_port()
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    (prefix / "nginx.conf").write_text(
        f"""
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    upstream shop {{ server 127.0.0.1:{upstream_port}; keepalive 4; }}
    server {{
        listen 127.0.0.1:{port};
        include {PROXY_SNIPPET};
    }}
}}
"""
    )
    nginx = Process("nginx", [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf")], {}, prefix / "out.log")
    shop.processes.append(nginx)
    wait_until(lambda: _listening(port), timeout=10, message="nginx did not start")
    return f"http://127.0.0.1:{port}"


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


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
    front = start_nginx(shop, tmp_path, int(web.rsplit(":", 1)[1]))

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
