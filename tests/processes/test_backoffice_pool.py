"""The back office has workers of its own (issue 24): nginx, with the shipped proxy settings
(deploy/nginx/shop-proxy.conf), sends /admin/ and /metrics to the back office's gunicorn pool
and everything else to the shop's, so a slow admin page or export never takes a shopper's
worker, and a sale's traffic never locks managers out."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.nginx import start_nginx
from tests.support.ordering import post_order
from tests.support.processes import Process, Shop
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

ACCESS_LOG = {"GUNICORN_CMD_ARGS": "--access-logfile -"}  # each pool's log names what it served
STUCK_ADMIN_REQUESTS = 5  # more than the back office's workers: some wait in nginx's queue too


def start_pools(shop: Shop, tmp_path) -> tuple[str, Process, Process]:
    """The shop's pool (two workers), the back office's (two) and nginx in front; returns
    nginx's base URL and the two pools' processes."""
    shop_pool = shop.start_web(workers=2, threads=1, **ACCESS_LOG)
    shop_process = shop.processes[-1]
    backoffice_pool = shop.start_web(workers=2, threads=1, **ACCESS_LOG)
    backoffice_process = shop.processes[-1]
    front = start_nginx(shop, tmp_path, shop_pool, backoffice_pool)
    shop.url = front
    return front, shop_process, backoffice_process


def served_by(process: Process, path: str) -> bool:
    return f'"GET {path} HTTP/1.0"' in process.log() or f'"GET {path} HTTP/1.1"' in process.log()


def test_nginx_sends_the_back_office_to_its_pool_and_shoppers_to_theirs(shop, make_product, tmp_path):
    make_product("MUG-001", on_hand=10)
    front, shop_pool, backoffice_pool = start_pools(shop, tmp_path)

    for path in ("/admin/login/?via=nginx", "/metrics?via=nginx", "/api/products/?via=nginx", "/health/live?via=nginx"):
        assert requests.get(f"{front}{path}", timeout=30).status_code == 200, path

    # Each pool writes its access line after its answer went out: wait for each pool's last.
    wait_until(lambda: served_by(backoffice_pool, "/metrics?via=nginx"), timeout=10, message="access log")
    wait_until(lambda: served_by(shop_pool, "/health/live?via=nginx"), timeout=10, message="access log")
    assert served_by(backoffice_pool, "/admin/login/?via=nginx")
    assert not served_by(shop_pool, "/admin/login/?via=nginx")
    assert served_by(shop_pool, "/api/products/?via=nginx")
    assert not served_by(backoffice_pool, "/api/products/?via=nginx")


def test_shoppers_order_while_every_back_office_worker_is_stuck(shop, make_product, tmp_path):
    """Every back-office worker stopped in the middle of its work (SIGSTOP: the extreme of a
    slow export), more admin requests queued behind them: shoppers still get their 202s."""
    make_product("MUG-001", on_hand=100)
    front, _, backoffice_pool = start_pools(shop, tmp_path)

    backoffice_pool.pause()
    with ThreadPoolExecutor(STUCK_ADMIN_REQUESTS + 4) as pool:
        try:
            managers = [
                pool.submit(requests.get, f"{front}/admin/login/", timeout=120) for _ in range(STUCK_ADMIN_REQUESTS)
            ]
            shoppers = list(pool.map(lambda n: post_order(front, email=f"s{n}@example.com", timeout=30), range(4)))

            assert [answer.status_code for answer in shoppers] == [202] * 4
            assert not any(manager.done() for manager in managers), "the back office was not stuck"
        finally:
            backoffice_pool.resume()
        assert [manager.result().status_code for manager in managers] == [200] * STUCK_ADMIN_REQUESTS


def test_managers_get_in_while_every_shop_worker_is_stuck(shop, make_product, tmp_path):
    """A sale that fills every shop worker (stopped here, the extreme of it) leaves the back
    office its own workers: its login page answers through the same address."""
    make_product("MUG-001", on_hand=100)
    front, shop_pool, _ = start_pools(shop, tmp_path)

    shop_pool.pause()
    with ThreadPoolExecutor(4) as pool:
        try:
            shoppers = [pool.submit(post_order, front, timeout=120) for _ in range(3)]

            assert requests.get(f"{front}/admin/login/", timeout=30).status_code == 200
            assert not any(shopper.done() for shopper in shoppers), "the shop was not stuck"
        finally:
            shop_pool.resume()
        assert [shopper.result().status_code for shopper in shoppers] == [202] * 3
