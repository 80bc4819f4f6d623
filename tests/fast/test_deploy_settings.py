"""The documented production configuration (deploy/production.env) passes `check --deploy`."""

import secrets

from tests.support.settings_probe import in_fresh_process, manage_in_fresh_process, production_environment


def test_the_documented_production_settings_pass_check_deploy_with_nothing_to_report(tmp_path):
    done = manage_in_fresh_process(tmp_path, production_environment(), "check", "--deploy", "--fail-level", "DEBUG")

    assert done.returncode == 0, done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout


def test_the_production_settings_trust_the_proxy_for_https_and_harden_cookies(tmp_path):
    code = (
        "result = [settings.SECURE_PROXY_SSL_HEADER, settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS,"
        " settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE, settings.REST_FRAMEWORK['NUM_PROXIES']]"
    )

    assert in_fresh_process(tmp_path, production_environment(), code) == [
        ["HTTP_X_FORWARDED_PROTO", "https"],
        True,
        31536000,
        True,
        True,
        1,
    ]


def test_check_deploy_names_what_the_defaults_leave_open(tmp_path):
    environ = {"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50), "PAYMENT_GATEWAY": "simulated"}

    done = manage_in_fresh_process(tmp_path, {**environ, "PAYMENT_SIMULATED_FAULTS": "true"}, "check", "--deploy")

    for check in ("security.W004", "security.W008", "security.W012", "security.W016", "payments.W001", "payments.W002"):
        assert check in done.stderr


def test_the_production_settings_keep_database_connections_and_check_them_before_reuse(tmp_path):
    code = "db = settings.DATABASES['default']; result = [db['CONN_MAX_AGE'], db['CONN_HEALTH_CHECKS']]"

    assert in_fresh_process(tmp_path, production_environment(), code) == [600, True]
