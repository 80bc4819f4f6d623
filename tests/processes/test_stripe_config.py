"""PAYMENT_GATEWAY=stripe refuses to start without its keys, with a message that says what to set."""

import os
import subprocess
import sys

import pytest

from tests.support.processes import PROJECT_DIR

ROOT = PROJECT_DIR


def manage_check(tmp_path, **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYMENT_"))}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**base, "VAR_DIR": str(tmp_path), "DJANGO_SECRET_KEY": "test-only", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "STRIPE_SECRET_KEY"),
        ({"STRIPE_SECRET_KEY": "pk_test_publishable"}, "STRIPE_SECRET_KEY"),
        ({"STRIPE_SECRET_KEY": "sk_test_x"}, "STRIPE_WEBHOOK_SECRET"),
    ],
)
def test_stripe_without_its_keys_refuses_to_start_naming_the_missing_one(tmp_path, env, named):
    result = manage_check(tmp_path, PAYMENT_GATEWAY="stripe", **env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"PAYMENT_GATEWAY=stripe needs {named}" in result.stderr


def test_stripe_with_both_keys_starts(tmp_path):
    result = manage_check(
        tmp_path, PAYMENT_GATEWAY="stripe", STRIPE_SECRET_KEY="sk_test_x", STRIPE_WEBHOOK_SECRET="whsec_x"
    )

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
