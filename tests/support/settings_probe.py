"""Settings as a fresh process reads them from its environment (the module is evaluated once
per process, so switches such as AWS_STORAGE_BUCKET_NAME or EMAIL_HOST are tested this way)."""

import json
import os
import re
import secrets
import subprocess
import sys

from tests.support import PROJECT_DIR

PRODUCTION_ENV = PROJECT_DIR / "deploy" / "production.env"
# What the placeholders stand for, the way an operator would fill them in.
FILLED = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "shop.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://shop.example.com",
    "PUBLIC_BASE_URL": "https://shop.example.com",
    "DATABASE_URL": "postgres://orders:password@127.0.0.1:5432/orders",
    "REDIS_URL": "redis://127.0.0.1:6379/7",
    "STRIPE_SECRET_KEY": "sk_live_" + "x" * 24,
    "STRIPE_PUBLISHABLE_KEY": "pk_live_" + "x" * 24,
    "STRIPE_WEBHOOK_SECRET": "whsec_" + "x" * 24,
    "EMAIL_HOST": "127.0.0.1",
    "AWS_STORAGE_BUCKET_NAME": "receipts",
}

# Unset in the probe unless a test sets them, whatever the developer's shell exports.
SWITCHES = (
    "AWS_STORAGE_BUCKET_NAME",
    "AWS_S3_ENDPOINT_URL",
    "RECEIPT_LINK_TTL_SECONDS",
    "EMAIL_HOST",
    "EMAIL_BACKEND",
    "DJANGO_DEBUG",
    "PAYMENT_GATEWAY",
    "PAYMENT_SIMULATED_FAULTS",
    "REDIS_URL",
)


def production_environment() -> dict[str, str]:
    """deploy/production.env with its placeholders filled in."""
    environ = {}
    for line in PRODUCTION_ENV.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, value = line.split("=", 1)
            environ[name] = FILLED[name] if re.fullmatch(r"<.*>", value) else value
    return environ


def _run(tmp_path, environ: dict[str, str], args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "VAR_DIR": str(tmp_path)}
    for name in SWITCHES:
        env.pop(name, None)
    return subprocess.run(args, env={**env, **environ}, capture_output=True, text=True, cwd=PROJECT_DIR, timeout=120)


def in_fresh_process(tmp_path, environ: dict[str, str], code: str):
    """Run `code` (which sets `result`) after Django starts with settings from `environ`."""
    script = f"import json, django\ndjango.setup()\nfrom django.conf import settings\n{code}\nprint(json.dumps(result))"
    done = _run(tmp_path, environ, [sys.executable, "-c", script])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def start_up_failure(tmp_path, environ: dict[str, str]) -> str:
    """The error a fresh process starting Django with `environ` fails with (it must fail)."""
    done = _run(tmp_path, environ, [sys.executable, "-c", "import django\ndjango.setup()"])
    assert done.returncode != 0, "Django started"
    return done.stderr.strip().splitlines()[-1]


def manage_in_fresh_process(tmp_path, environ: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`manage.py ARGS` run to its end with settings from `environ`."""
    return _run(tmp_path, environ, [sys.executable, "manage.py", *args])
