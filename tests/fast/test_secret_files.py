"""Every secret setting is read from NAME or from the file NAME_FILE names (Docker and
Kubernetes mount secrets as files), through one helper, config.env.env_secret."""

import re

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_secret
from tests.support.processes import PROJECT_DIR
from tests.support.settings_probe import in_fresh_process, production_environment, start_up_failure

SECRETS = {
    "DJANGO_SECRET_KEY": "k" * 60,
    "STRIPE_SECRET_KEY": "sk_live_" + "f" * 24,
    "STRIPE_WEBHOOK_SECRET": "whsec_" + "f" * 24,
    "EMAIL_HOST_PASSWORD": "smtp password from a file",
    "AWS_ACCESS_KEY_ID": "AKIAFROMAFILE",
    "AWS_SECRET_ACCESS_KEY": "s3 secret from a file",
    "METRICS_TOKEN": "metrics token from a file",
    "DATABASE_URL": "postgres://orders:db-password-from-a-file@127.0.0.1:5432/orders",
    "REDIS_URL": "redis://:redis-password-from-a-file@127.0.0.1:6379/7",
}


def test_a_secret_comes_from_the_variable_or_from_the_file_without_its_line_break(tmp_path):
    secret_file = tmp_path / "stripe_key"
    secret_file.write_text("sk_test_from_file\n")

    assert env_secret("STRIPE_SECRET_KEY", environ={"STRIPE_SECRET_KEY": "sk_test_var"}) == "sk_test_var"
    assert env_secret("STRIPE_SECRET_KEY", environ={"STRIPE_SECRET_KEY_FILE": str(secret_file)}) == "sk_test_from_file"
    assert env_secret("STRIPE_SECRET_KEY", "fallback", environ={}) == "fallback"


def test_a_secret_set_both_ways_is_refused_naming_both(tmp_path):
    secret_file = tmp_path / "key"
    secret_file.write_text("one")

    with pytest.raises(ImproperlyConfigured, match="DJANGO_SECRET_KEY and DJANGO_SECRET_KEY_FILE are both set"):
        env_secret(
            "DJANGO_SECRET_KEY", environ={"DJANGO_SECRET_KEY": "two", "DJANGO_SECRET_KEY_FILE": str(secret_file)}
        )


def test_a_secret_file_that_cannot_be_read_stops_start_up_naming_it(tmp_path):
    environ = {
        **production_environment(),
        "STRIPE_WEBHOOK_SECRET": "",
        "STRIPE_WEBHOOK_SECRET_FILE": "/run/secrets/absent",
    }

    failure = start_up_failure(tmp_path, environ)

    assert (
        "STRIPE_WEBHOOK_SECRET_FILE=/run/secrets/absent: the file cannot be read (No such file or directory)" in failure
    )


def test_the_production_settings_take_every_secret_from_files(tmp_path):
    environ = {**production_environment(), "AWS_S3_ENDPOINT_URL": "http://127.0.0.1:1"}
    (tmp_path / "secrets").mkdir()
    for name, value in SECRETS.items():
        environ[name] = ""  # unset, whatever the shell running the tests exports
        path = tmp_path / "secrets" / name.lower()
        path.write_text(value + "\n")
        environ[f"{name}_FILE"] = str(path)
    code = (
        "from django.core.files.storage import storages\n"
        "s3 = storages['receipts']\n"
        "database = settings.DATABASES['default']\n"
        "result = {'DJANGO_SECRET_KEY': settings.SECRET_KEY, 'STRIPE_SECRET_KEY': settings.STRIPE_SECRET_KEY,"
        " 'STRIPE_WEBHOOK_SECRET': settings.STRIPE_WEBHOOK_SECRET, 'EMAIL_HOST_PASSWORD': settings.EMAIL_HOST_PASSWORD,"
        " 'AWS_ACCESS_KEY_ID': s3.access_key, 'AWS_SECRET_ACCESS_KEY': s3.secret_key,"
        " 'METRICS_TOKEN': settings.METRICS_TOKEN, 'DATABASE_PASSWORD': database['PASSWORD'],"
        " 'REDIS_URL': settings.Q_CLUSTER['redis']}"
    )

    read = in_fresh_process(tmp_path, environ, code)

    expected = {name: value for name, value in SECRETS.items() if name != "DATABASE_URL"}
    assert read == {**expected, "DATABASE_PASSWORD": "db-password-from-a-file"}


def test_every_secret_setting_is_read_through_env_secret_and_documented():
    sources = "\n".join(path.read_text() for path in (PROJECT_DIR / "config").rglob("*.py"))
    read_as_secrets = set(re.findall(r'env_secret\(\s*"([A-Z_]+)"', sources))
    variables = (PROJECT_DIR / "docs" / "configuration.md").read_text()

    assert read_as_secrets == set(SECRETS)
    for name in SECRETS:
        assert f"`{name}_FILE`" in variables, f"{name}_FILE is not in docs/configuration.md's variables table"
