"""Shared fixtures: a catalog, an API client, and a pipeline that runs inline.

Unit and API tests run the django-q2 tasks synchronously (`Conf.SYNC`), so an order placed
in a test goes through its whole pipeline before the request returns; tests that need a
real `qcluster` process start one (see tests/processes.py).
"""

import os
from decimal import Decimal

import pytest
from django.db import connection
from rest_framework.test import APIClient

from inventory.models import Product, Stock, StockMovement

ON_CI = os.environ.get("CI", "").lower() == "true"

# Servers on loopback that some tests talk to: a local AWS (S3, SNS, SQS) and SMTP.
pytest_plugins = ["tests.aws", "tests.smtp"]


@pytest.fixture(autouse=True)
def _fast_pipeline(settings, tmp_path, monkeypatch):
    """Inline tasks, tiny backoffs, receipts and emails kept inside the test's own folder."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    settings.PIPELINE_BACKOFF_SCALE = 0.001
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.STORAGES = {
        **settings.STORAGES,
        "receipts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "private")},
        },
    }


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


def requires_postgres():
    """Skip where PostgreSQL is not the test database, except on CI, where that is a failure."""
    if connection.vendor == "postgresql":
        return
    if ON_CI:
        pytest.fail("CI must run the PostgreSQL tests: set DATABASE_URL to the local server.")
    pytest.skip("needs PostgreSQL (set DATABASE_URL=postgres://...)")
