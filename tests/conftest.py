"""Shared fixtures: a catalog, an API client, and a pipeline that runs inline.

Unit and API tests run the django-q2 tasks synchronously (`Conf.SYNC`), so an order placed
in a test goes through its whole pipeline before the request returns; tests that need a
real `qcluster` process start one (see tests/support/processes.py).
"""

from decimal import Decimal
from pathlib import Path

import pytest
from django.test import Client
from rest_framework.test import APIClient

from inventory.models import Product, Stock, StockMovement
from tests.support.admin_client import log_in
from tests.support.environment import requires_postgres
from tests.support.fast_pipeline import use_fast_pipeline
from tests.support.ordering import place, placed

# Fixtures of the support modules: servers on loopback that some tests talk to (a local AWS
# for S3, SNS and SQS; SMTP), and the shop's own processes (`shop`).
pytest_plugins = [
    "tests.support.aws",
    "tests.support.smtp",
    "tests.support.processes",
    "tests.support.servers",
    "tests.support.faults",
    "tests.support.links",
]


@pytest.fixture(scope="session", autouse=True)
def _static_root():
    """Whitenoise warns on every request when STATIC_ROOT is missing; a clean clone has none."""
    from django.conf import settings

    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On SQLite, a test database in a file rather than in memory, so that the processes some
    tests start (a web server, a qcluster) share it with the test."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("database") / "test.sqlite3")


@pytest.fixture(autouse=True)
def _fast_pipeline(settings, tmp_path, monkeypatch):
    """Inline tasks, tiny backoffs, receipts and emails kept inside the test's own folder."""
    use_fast_pipeline(settings, monkeypatch, tmp_path)
    yield
    # The outbox keeps which webhook endpoints listen for a moment (webhooks/outbox.py); a
    # test's endpoints are rolled back with it, so the next test must not write to them.
    from webhooks.outbox import OUTBOX

    OUTBOX.subscriptions.forget()


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def make_product(transactional_db):
    """Create a product with stock on hand, through the ledger like every stock change.

    Tests using it commit for real, so `transaction.on_commit` starts the pipeline as in production.
    """
    from inventory.services import adjust_stock

    def make(sku="MUG-001", *, price="12.50", currency="USD", on_hand=10, active=True, name=None) -> Product:
        product = Product.objects.create(
            sku=sku, name=name or f"Product {sku}", price=Decimal(price), currency=currency, active=active
        )
        Stock.objects.create(product=product)
        if on_hand:
            adjust_stock(product=product, delta=on_hand, reason=StockMovement.Reason.IMPORT, note="test")
        return product

    return make


@pytest.fixture
def shopper(api):
    """Places orders the way a shopper does, over the API: the one way a test places an order."""
    from orders.models import Order

    class Shopper:
        def places(self, quantities: dict[str, int], *, pay_with="pm_card_visa", email="shopper@example.com"):
            """Send the order and return the API's answer as it is."""
            return place(api, quantities, pay_with=pay_with, email=email)

        def buys(self, quantities: dict[str, int], *, pay_with="pm_card_visa", email="shopper@example.com") -> Order:
            """Place the order, expect it accepted (202), and return the order row."""
            return placed(self.places(quantities, pay_with=pay_with, email=email))

    return Shopper()


@pytest.fixture
def held_pipeline(monkeypatch):
    """Tasks go to the real database queue instead of running inline, so a test can hold an
    order between steps, run a step itself, or lose the queued messages like a failed broker.

    The one way a test holds the pipeline; `run_inline()` lets the tasks run inline again
    (the compensation after a cancel, a refund a manager asks for) and `hold()` holds them again.
    """
    from django_q.conf import Conf
    from django_q.models import OrmQ

    class HeldPipeline:
        def hold(self) -> None:
            monkeypatch.setattr(Conf, "SYNC", False)
            monkeypatch.setattr(Conf, "ORM", "default")  # the database queue even where REDIS_URL is set

        def run_inline(self) -> None:
            monkeypatch.setattr(Conf, "SYNC", True)

        def queued(self) -> list[tuple[str, tuple]]:
            return [(m.task["func"], tuple(m.task["args"])) for m in OrmQ.objects.order_by("id")]

        def lose_queued(self) -> int:
            return OrmQ.objects.all().delete()[0]

        def run_by_hand(self, order, *steps: str):
            """Run these steps on the order in this process, losing every message they queue;
            returns the order as they left it."""
            from orders.pipeline import run_step

            for step in steps:
                self.lose_queued()
                run_step(order.pk, step)
            self.lose_queued()
            order.refresh_from_db()
            return order

    pipeline = HeldPipeline()
    pipeline.hold()
    return pipeline


@pytest.fixture
def stock_invariants_hold(transactional_db):
    """Checks, once the test is done, that the ledger sums to on hand and no stock is negative."""
    yield
    from tests.support.invariants import assert_stock_invariants

    assert_stock_invariants()


@pytest.fixture(autouse=True)
def _requires_postgres(request):
    """Tests marked `requires_postgres` skip where PostgreSQL is absent, and fail so on CI."""
    if request.node.get_closest_marker("requires_postgres"):
        requires_postgres()


@pytest.fixture
def staff_client(transactional_db, settings):
    """A client logged in through the admin's login form, as a new account in a role of
    staff.roles.ROLES (or SUPERUSER, NO_ROLE): `staff_client("clerk")`; `.user` is the account."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only

    def logged_in(role: str, username: str | None = None) -> Client:
        client = Client()
        client.user = log_in(client, role, username)
        return client

    return logged_in


@pytest.fixture
def manager(staff_client):
    """An order manager (who refunds too: docs/ROLES.md), named "manager"."""
    return staff_client("manager", "manager")


@pytest.fixture
def clerk(staff_client):
    """A Stock clerk, as create_staff makes one."""
    return staff_client("clerk")


@pytest.fixture
def fake_stripe(request, settings):
    """The app on PAYMENT_GATEWAY=stripe, talking to a local server that speaks Stripe's API
    (tests/support/fake_stripe.py).

    Network retries are off and the timeout short, so each test decides which failures it sees.
    Afterwards, in tests with a database, both books must balance: the stock ledger, and no
    charge without an order (a test that breaks them on purpose sets `check_books = False`).
    """
    from tests.support.fake_stripe import WEBHOOK_SECRET, FakeStripe, assert_no_charge_without_order
    from tests.support.invariants import assert_stock_invariants

    with FakeStripe() as server:
        settings.PAYMENT_GATEWAY = "stripe"
        settings.STRIPE_SECRET_KEY = server.api_key
        settings.STRIPE_API_BASE = server.url
        settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
        settings.STRIPE_TIMEOUT_SECONDS = 1.0
        settings.STRIPE_MAX_NETWORK_RETRIES = 0
        yield server
        if server.check_books and "transactional_db" in request.fixturenames:
            assert_stock_invariants()
            assert_no_charge_without_order(server)


@pytest.fixture
def subscriptions_read_once(transactional_db):
    """Which event types have a webhook endpoint is read once per WEBHOOK_SUBSCRIPTIONS_SECONDS
    per process (webhooks/outbox.py), not once per order: read it before counting."""
    from webhooks.outbox import OUTBOX

    OUTBOX.subscriptions.forget()
    OUTBOX.subscriptions.endpoints_for("order.placed")
    OUTBOX.subscriptions.read_at = float("inf")  # the period never ends during the count
    yield
    OUTBOX.subscriptions.forget()
