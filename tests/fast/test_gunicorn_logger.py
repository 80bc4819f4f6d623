"""gunicorn's access lines: not built while `gunicorn.access` does not log INFO (the shop's
JSON logs), built and written as gunicorn's own when it does."""

import logging
from datetime import timedelta
from types import SimpleNamespace

from gunicorn.config import Config

from framework.gunicorn_logger import AccessLinesWhenLogged


def access_lines(level: int, monkeypatch) -> list:
    config = Config()
    config.set("logconfig_dict", {"version": 1, "disable_existing_loggers": False})
    logger = AccessLinesWhenLogged(config)
    logger.access_log.setLevel(level)
    built = []
    monkeypatch.setattr(logger, "atoms", lambda *args: built.append(args) or {})
    response = SimpleNamespace(status="202 Accepted", headers=[], sent=10)
    request = SimpleNamespace(headers=[])
    environ = {"REQUEST_METHOD": "POST", "RAW_URI": "/api/orders/", "SERVER_PROTOCOL": "HTTP/1.1"}
    logger.access(response, request, environ, timedelta(milliseconds=5))
    return built


def test_no_access_line_is_built_while_access_lines_are_off(monkeypatch):
    assert access_lines(logging.WARNING, monkeypatch) == []


def test_an_access_line_is_built_when_they_are_logged(monkeypatch):
    assert len(access_lines(logging.INFO, monkeypatch)) == 1
