"""`make run`'s server holds a burst: what bin/run starts from the Procfile, on the embedded
defaults (SQLite in VAR_DIR, the ORM broker), takes 100 orders placed at the same instant
through its nginx (the one address, PORT) and the shop's gunicorn pool behind it.

Every placement gets an HTTP answer (202, or a 4xx), none is reset or times out; the stock
sold equals the accepted orders that ended COMPLETED. Then bin/run, asked to stop as Ctrl-C
would, stops nginx, both pools and the cluster within seconds and exits 0.
"""

import os
import re
import signal
import socket
import subprocess
import time

import pytest
import requests

from tests.support.concurrency import all_at_once
from tests.support.ordering import post_order
from tests.support.processes import NOT_INHERITED, PROJECT_DIR, PYTHON, START_TIMEOUT, Process, Shop, wait_until

pytestmark = pytest.mark.slow

SHOPPERS = 100
STOCK = 60  # fewer units than shoppers: some orders are refused for want of stock
SKU = "BURST-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_run_environment(shop: Shop, port: int) -> dict[str, str]:
    """The developer's environment as `make run` sees it, with its files in the test's folder."""
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED and k not in {"PUBLIC_BASE_URL", "PORT"}}
    env.update(
        VAR_DIR=str(shop.var_dir),  # the SQLite database and the secret key, as under var/
        PORT=str(port),
        # The pools' ports too: PORT+1 and PORT+2 may be another process's ephemeral ports.
        SHOP_PORT=str(free_port()),
        BACKOFFICE_PORT=str(free_port()),
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(shop.email_dir),
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}\n{result.stderr}"


def available(shop: Shop) -> int:
    products = requests.get(f"{shop.url}/api/products/", timeout=30).json()
    return next(p["available"] for p in products if p["sku"] == SKU)


def in_stock(shop: Shop) -> bool:
    """The shop answers, with the whole stock on sale (a loaded machine boots its workers slowly)."""
    try:
        return available(shop) == STOCK
    except (requests.ConnectionError, requests.Timeout):
        return False


def group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def served(tmp_path):
    """bin/run with the Procfile on a fresh SQLite database: migrated, one product in stock."""
    shop = Shop(tmp_path, cluster_name="orders")
    port = free_port()
    env = make_run_environment(shop, port)
    manage(env, "migrate", "--noinput")
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(f"sku,name,price,currency,on_hand\n{SKU},Burst mug,10.00,USD,{STOCK}\n")
    manage(env, "import_stock", str(catalog))

    run = Process("run", [PYTHON, "bin/run", "Procfile"], env, tmp_path / "run.log")
    shop.processes.append(run)
    try:
        run.wait_for_log(rf"Listening at: http://127\.0\.0\.1:{env['SHOP_PORT']}")  # the shop's pool
        run.wait_for_log(rf"Listening at: http://127\.0\.0\.1:{env['BACKOFFICE_PORT']}")  # the back office's
        run.wait_for_log(r"Q Cluster .+ running")
        shop.url = f"http://127.0.0.1:{port}"
        wait_until(lambda: in_stock(shop), timeout=START_TIMEOUT, message="the shop does not answer")
        yield shop, run
    finally:
        shop.stop_all()
        print(shop.logs())


def place(shop: Shop, number: int) -> tuple[int, dict] | str:
    """One shopper on a connection of its own: the answer's status and body, or what went wrong."""
    try:
        response = post_order(shop.url, {SKU: 1}, email=f"shopper{number}@example.com", timeout=60)
    except requests.RequestException as error:  # reset, refused, timed out
        return f"{type(error).__name__}: {error}"
    return response.status_code, response.json() if response.status_code == 202 else {}


def test_the_run_server_answers_a_burst_of_orders_and_stops_cleanly(served):
    shop, run = served

    answers = all_at_once(lambda number: place(shop, number), SHOPPERS)

    failures = [answer for answer in answers if isinstance(answer, str)]
    assert not failures, f"{len(failures)} of {SHOPPERS} placements got no HTTP answer: {failures[:5]}"
    statuses = sorted({status for status, _ in answers})
    assert all(status == 202 or 400 <= status < 500 for status in statuses), statuses
    accepted = [body["reference"] for status, body in answers if status == 202]
    final = [shop.wait_for_final_state(reference, timeout=120)["state"] for reference in accepted]
    completed = final.count("COMPLETED")
    sold = STOCK - available(shop)
    print(f"answers {statuses}, accepted {len(accepted)}, completed {completed}, sold {sold}")
    assert sold == completed
    assert completed == min(STOCK, len(accepted))  # every unit in stock found a buyer
    assert set(final) <= {"COMPLETED", "REJECTED"}, sorted(final)

    # Stopped as Ctrl-C stops it (no terminal here: the signal reaches bin/run alone).
    pids = [int(pid) for pid in re.findall(r"(?:front|shop|backoffice|worker) started \(pid (\d+)\)", run.log())]
    assert len(pids) == 4, run.log()[-2000:]
    started = time.monotonic()
    run.popen.send_signal(signal.SIGINT)
    status = run.popen.wait(timeout=30)
    took = time.monotonic() - started
    print(f"stopped in {took:.1f}s with status {status}")
    assert status == 0, run.log()[-3000:]
    assert not [pid for pid in pids if group_alive(pid)], "a process of nginx, a pool or the worker outlived bin/run"
    assert took < 15
    assert "killing" not in run.log()  # all stopped on SIGTERM, none had to be killed
