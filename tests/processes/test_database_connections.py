"""The web server's database connection as production runs it: kept between requests
(no new server process and login per request), checked before it serves a new one."""

import pytest
import requests
from django.db import connection

from tests.support.processes import database_url

pytestmark = [pytest.mark.slow, pytest.mark.requires_postgres]


WEB = "shop-web-under-test"


def web_backends() -> list[tuple[int, object]]:
    """(pid, backend start) of the web worker's sessions on the test database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, backend_start FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s",
            [WEB],
        )
        return sorted(cursor.fetchall())


def look_up(shop, reference: str) -> int:
    return requests.get(f"{shop.url}/api/orders/{reference}/", timeout=30).status_code


def test_the_web_worker_keeps_one_connection_across_requests_and_opens_a_new_one_when_it_was_cut(shop, make_product):
    make_product("MUG-001", price="12.50", on_hand=50)
    # Named, to tell its connection from any other on the test database.
    shop.start_web(workers=1, threads=1, DATABASE_URL=f"{database_url()}?application_name={WEB}")
    reference = shop.place_order([("MUG-001", 1)])["reference"]
    backends = web_backends()
    assert len(backends) == 1, "the web worker kept no connection after its request"
    kept = backends[0]

    for _ in range(5):
        assert look_up(shop, reference) == 200
    shop.place_order([("MUG-001", 1)])

    assert web_backends() == [kept]

    # A failover or a restart ends the server side of the kept connection.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [kept[0]])

    # The next request finds the connection dead before using it, and is served: no 503.
    assert look_up(shop, reference) == 200
    shop.place_order([("MUG-001", 1)])
    (renewed,) = web_backends()
    assert renewed[0] != kept[0]
