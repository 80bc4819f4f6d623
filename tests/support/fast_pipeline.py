"""The pipeline as unit and API tests run it: inline, with tiny backoffs and generous limits."""

from pathlib import Path

GENEROUS_RATES = {
    "order_placement_address": "100000/min",
    "order_placement_email": "100000/min",
    "order_lookup": "100000/min",
}


def use_fast_pipeline(settings, monkeypatch, folder: Path) -> None:
    """What `_fast_pipeline` sets, for any scope: `settings` a pytest-django SettingsWrapper,
    `monkeypatch` a pytest MonkeyPatch, receipts kept under `folder`."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    settings.PIPELINE_BACKOFF_SCALE = 0.001
    settings.PAYMENT_SIMULATED_FAULTS = True
    # Tests place many orders from one address and email: the abuse limits are generous here,
    # and each test that proves one sets it low (tests/fast/test_abuse_*.py). Counts start afresh.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": GENEROUS_RATES}
    settings.CACHES = {
        **settings.CACHES,
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests"},
    }
    settings.HELD_UNITS_PER_CLIENT = 100_000
    settings.SHOP_MAX_UNPAID_SHARE = 1
    settings.SHOP_HOLD_LAPSE_WAIT_SECONDS = 0
    # Tests fail a provider on purpose, order after order: the circuit breakers stay closed
    # here, and each test that proves one sets the threshold (tests/fast/test_holds.py).
    settings.BREAKER_FAILURES = 1_000_000
    settings.FAILURE_EMAILS_PER_ADDRESS_PER_HOUR = 100_000
    from django.core.cache import cache

    cache.clear()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.STORAGES = {
        **settings.STORAGES,
        "receipts": {
            "BACKEND": "receipts.storage.ReceiptFileStorage",
            "OPTIONS": {"location": str(folder / "private")},
        },
        # Pages render without `collectstatic` having built the manifest.
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
