"""The shop's image, as a shop deploys it: built from this checkout with podman, migrations
run twice at once, then web (the shop's pool), backoffice (the back office's), cluster and nginx
from the images against a PostgreSQL and a Redis, with the production settings (DEBUG off,
the content security policy enforced, Stripe through the test's Stripe server, S3, SMTP,
every secret from a mounted file). A shopper in Chromium buys with a card through 3-D Secure
at nginx's address: the order completes, its receipt downloads, the email arrives and the
browser refuses nothing under the policy. Every process runs as a non-root user; SIGTERM
stops every container within 10 s and no order is lost.

`make test` runs it with a few orders; `make image-test` (IMAGE_TEST_PROFILE=full) with more.
"""

import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from bench.stack import LIFTED_ABUSE_LIMITS
from tests.support.aws import local_aws, s3_bucket  # noqa: F401  (fixtures)
from tests.support.fake_stripe import WEBHOOK_SECRET, FakeStripe
from tests.support.image import (
    IMAGE,
    NGINX_IMAGE,
    ComposeStack,
    Container,
    build_images,
    image_size_bytes,
    secret_files,
)
from tests.support.servers import free_port, private_postgres, private_redis  # noqa: F401  (fixtures)
from tests.support.shop_page import PRODUCTION_PAGE_ENV, buy_by_card_through_3d_secure, shopper_page
from tests.support.smtp import LocalSmtp
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.image, pytest.mark.slow]

FULL = os.environ.get("IMAGE_TEST_PROFILE") == "full"
ORDERS_IN_FLIGHT_AT_STOP = 20 if FULL else 4
STOP_BUDGET_SECONDS = 10


@pytest.fixture(scope="module")
def images():
    took = build_images()
    print(f"image build: {took['shop']:.1f} s (nginx {took['nginx']:.1f} s), size {image_size_bytes() / 1e6:.0f} MB")
    return took


@pytest.fixture
def servers(private_postgres, private_redis, local_aws, s3_bucket, tmp_path):  # noqa: F811
    """Everything the shop talks to, on loopback, and the production environment pointing at it."""
    smtp = LocalSmtp()
    smtp.start()
    with FakeStripe() as stripe:
        secrets_env, mounts = secret_files(
            tmp_path / "secrets",
            {
                "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
                "DATABASE_URL": private_postgres.create_database("shop"),
                "STRIPE_SECRET_KEY": stripe.api_key,
                "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "AWS_ACCESS_KEY_ID": local_aws.access_key,
                "AWS_SECRET_ACCESS_KEY": local_aws.secret_key,
            },
        )
        front_port = free_port()
        environ = {
            **PRODUCTION_PAGE_ENV,  # DEBUG off, Stripe.js under the policy that lets it in
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{front_port}",
            "TRUSTED_PROXY_COUNT": "1",
            "REDIS_URL": private_redis.url(0),
            "PAYMENT_GATEWAY": "stripe",
            "STRIPE_API_BASE": stripe.url,
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp.port),
            "AWS_STORAGE_BUCKET_NAME": s3_bucket,
            "AWS_S3_ENDPOINT_URL": local_aws.endpoint_url,
            "AWS_S3_REGION_NAME": local_aws.region,
            "Q_CLUSTER_NAME": f"image-{secrets.token_hex(4)}",
            "CLUSTER_HEARTBEAT_SECONDS": "1",
            "LOG_LEVEL": "INFO",
            **LIFTED_ABUSE_LIMITS,  # one test address places every order
            **secrets_env,
        }
        yield {"environ": environ, "mounts": mounts, "front_port": front_port, "smtp": smtp, "stripe": stripe}
    smtp.stop()


class Deployment:
    """The containers of one deployment, removed at the end whatever happened."""

    def __init__(self, servers: dict):
        self.servers = servers
        self.containers: list[Container] = []

    def container(self, name: str, *args: str, **env: str) -> Container:
        """A container of the shop's image, with the production environment and the secrets."""
        return self.add(Container(name, IMAGE, list(args), {**self.servers["environ"], **env}, self.servers["mounts"]))

    def add(self, container: Container) -> Container:
        self.containers.append(container)
        return container

    def logs(self) -> str:
        return "\n".join(container.logs() for container in self.containers)

    def remove(self) -> None:
        for container in self.containers:
            container.remove()


@pytest.fixture
def deployment(images, servers):
    deployed = Deployment(servers)
    try:
        yield deployed
    finally:
        print(deployed.logs())  # pytest shows it when the test failed
        deployed.remove()


def is_ready(url: str) -> bool:
    """/health/ready answers 200 at `url` (through nginx)."""
    try:
        return requests.get(f"{url}/health/ready", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def start_shop(deployment: Deployment) -> tuple[dict[str, Container], str]:
    """web, backoffice, cluster and nginx started; returns them by name and nginx's address,
    once /health/ready answers 200 through nginx."""
    started = time.monotonic()
    web_port, backoffice_port = free_port(), free_port()
    web = deployment.container("web", "web", PORT=str(web_port), WEB_CONCURRENCY="2").start()
    backoffice = deployment.container("backoffice", "backoffice", PORT=str(backoffice_port)).start()
    cluster = deployment.container("cluster", "cluster").start()
    nginx_env = {
        "SHOP_UPSTREAM": f"127.0.0.1:{web_port}",
        "BACKOFFICE_UPSTREAM": f"127.0.0.1:{backoffice_port}",
        "NGINX_PORT": str(deployment.servers["front_port"]),
    }
    front = deployment.add(Container("nginx", NGINX_IMAGE, [], nginx_env)).start()
    url = f"http://127.0.0.1:{deployment.servers['front_port']}"
    wait_until(
        lambda: is_ready(url),
        timeout=120,
        interval=0.2,
        message=lambda: f"the shop never got ready:\n{deployment.logs()}",
    )
    print(f"start to ready: {time.monotonic() - started:.1f} s")  # reported, never asserted
    return {"nginx": front, "web": web, "backoffice": backoffice, "cluster": cluster}, url


def place_order(url: str, sku: str) -> str:
    response = requests.post(
        f"{url}/api/orders/",
        json={"email": "shopper@example.com", "lines": [{"sku": sku, "quantity": 1}], "payment_method": "pm_card_visa"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return response.json()["reference"]


def order(url: str, reference: str) -> dict:
    response = requests.get(f"{url}/api/orders/{reference}/", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def wait_until_completed(url: str, reference: str, deployment: Deployment) -> dict:
    return wait_until(
        lambda: (body := order(url, reference))["is_final"] and body["receipt_url"] and body,
        timeout=120,
        interval=0.3,
        message=lambda: f"order {reference}: {order(url, reference)}\n{deployment.logs()}",
    )


def test_the_image_deployed_sells_by_card_in_chromium_and_stops_without_losing_an_order(deployment, servers):
    # Migrations as a one-off job, started twice at once: both succeed.
    migrates = [deployment.container(f"migrate{i}", "migrate").start_in_background() for i in (1, 2)]
    outputs = [migrate.communicate(timeout=600)[0] for migrate in migrates]
    assert [migrate.returncode for migrate in migrates] == [0, 0], "\n".join(outputs)
    catalog = deployment.container("import", "import_stock", "--if-empty", "inventory/demo_catalog.csv").run_to_end()
    assert catalog.returncode == 0, catalog.stdout + catalog.stderr

    containers, url = start_shop(deployment)
    product = requests.get(f"{url}/api/products/", timeout=30).json()[0]

    # A shopper in Chromium, at nginx's address, under the policy the image sends: pays by card
    # through 3-D Secure (the webhook reaches the web pool through nginx), the order completes,
    # its receipt downloads from S3 by the order page's link; the browser refused nothing.
    started = time.monotonic()
    with shopper_page() as page:
        receipt = buy_by_card_through_3d_secure(page, servers["stripe"], url, product["name"], name="image")
        reference = page.url.rsplit("/orders/", 1)[1]
        policy = page.request.get(page.url).headers["content-security-policy"]
        assert page.policy_violations == []
    print(f"the shopper's purchase in Chromium: {time.monotonic() - started:.1f} s")  # reported, never asserted
    assert receipt.startswith(b"%PDF")
    assert "script-src 'self' https://js.stripe.com" in policy
    body = wait_until_completed(url, reference, deployment)
    assert body["state"] == "COMPLETED", body
    assert [intent["status"] for intent in servers["stripe"].intents_for(reference)] == ["succeeded"]
    confirmation = (["shopper@example.com"], f"Your order {reference} is confirmed")
    wait_until(
        lambda: confirmation in [(mail.recipients, mail.subject) for mail in servers["smtp"].received],
        timeout=60,
        message=lambda: f"no confirmation among {servers['smtp'].received}\n{deployment.logs()}",
    )
    not_found = requests.get(f"{url}/no-such-page", timeout=30)
    assert not_found.status_code == 404 and "DEBUG = True" not in not_found.text  # debug really off

    # The back office through the same address, served by its own pool.
    assert requests.get(f"{url}/admin/login/", timeout=30).status_code == 200
    assert "GET /admin/login/" in containers["backoffice"].logs()
    assert "GET /admin/login/" not in containers["web"].logs()

    # Nobody runs as root: not the pools', the cluster's, nor nginx's processes.
    for container in containers.values():
        users = container.users()
        assert users and "root" not in users, (container.name, users)
    # The cluster's liveness probe, as its healthcheck runs it inside the container.
    probed = containers["cluster"].exec("/app/deploy/image/entrypoint", "cluster_alive")
    assert probed.returncode == 0, probed.stdout + probed.stderr

    # SIGTERM with orders in flight: every container stops within the budget, none is killed.
    with ThreadPoolExecutor(ORDERS_IN_FLIGHT_AT_STOP) as pool:
        in_flight = list(pool.map(lambda _: place_order(url, product["sku"]), range(ORDERS_IN_FLIGHT_AT_STOP)))
    with ThreadPoolExecutor(len(containers)) as pool:
        took = pool.map(Container.stop, containers.values())
        stop_seconds = dict(zip(containers, took, strict=True))
    exits = {container.name: container.exit_code for container in containers.values()}
    print(f"stopped in {stop_seconds}; exit codes {exits}")
    assert max(stop_seconds.values()) < STOP_BUDGET_SECONDS, stop_seconds
    assert 137 not in exits.values(), exits  # 128 + SIGKILL: podman had to kill one

    # Started again, the shop finishes every order accepted before the stop.
    _, url = start_shop(deployment)
    finished = [wait_until_completed(url, reference, deployment) for reference in in_flight]
    assert {body["state"] for body in finished} == {"COMPLETED"}
    for body in finished:
        assert len(servers["stripe"].intents_for(body["reference"])) == 1


def test_the_compose_stack_comes_up_from_the_checkout_and_serves_a_shop_through_nginx(images):
    """compose.yaml as a shop runs it, on this machine's podman: the secrets, PostgreSQL, Redis,
    the migrations, both pools, the cluster and nginx, found by their service names (netavark's
    DNS); a shopper's order completes and the back office answers, at the one address."""
    stack = ComposeStack(free_port())
    started = time.monotonic()
    try:
        up = stack.up()
        assert up.returncode == 0, f"{up.stdout[-3000:]}\n{up.stderr[-3000:]}"
        wait_until(
            lambda: is_ready(stack.url),
            timeout=300,
            interval=0.5,
            message=lambda: f"the stack never got ready:\n{stack.logs()}",
        )
        print(f"compose up to ready: {time.monotonic() - started:.1f} s")  # reported, never asserted
        sku = requests.get(f"{stack.url}/api/products/", timeout=30).json()[0]["sku"]
        reference = place_order(stack.url, sku)
        body = wait_until(
            lambda: (answer := order(stack.url, reference))["is_final"] and answer,
            timeout=120,
            interval=0.5,
            message=lambda: f"order {reference}: {order(stack.url, reference)}\n{stack.logs()}",
        )
        assert body["state"] == "COMPLETED", body
        assert requests.get(f"{stack.url}/admin/login/", timeout=30).status_code == 200
    finally:
        stack.down()
