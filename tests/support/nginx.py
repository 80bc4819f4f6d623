"""Debian's nginx in front of the shop's processes, with the shipped proxy settings
(deploy/nginx/shop-proxy.conf): the shop's pool and the back office's as its two upstreams."""

import contextlib
import shutil
import socket
from pathlib import Path

import pytest

from bench.stack import write_nginx_conf
from tests.support.processes import Process, Shop, wait_until

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def start_nginx(shop: Shop, tmp_path: Path, shop_pool: str, backoffice_pool: str | None = None) -> str:
    """nginx on a free loopback port, in front of the pools at `shop_pool` and `backoffice_pool`
    (base URLs; the shop's pool serves both when there is one); returns its base URL. The shop
    fixture stops it with the shop's other processes."""
    if not Path(NGINX).exists():
        pytest.fail("Debian's nginx is not installed (apt-get install nginx); .ci/run installs it.")
    port = free_port()
    prefix = tmp_path / "nginx"
    conf = write_nginx_conf(prefix, port, port_of(shop_pool), port_of(backoffice_pool or shop_pool))
    nginx = Process("nginx", [NGINX, "-e", "stderr", "-p", str(prefix), "-c", str(conf)], {}, prefix / "out.log")
    shop.processes.append(nginx)
    wait_until(lambda: listening(port), timeout=10, message="nginx did not start")
    return f"http://127.0.0.1:{port}"
