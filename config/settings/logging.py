"""Logging: one line per record to the console (the process manager keeps them), at LOG_LEVEL.

LOG_FORMAT=json writes each record as one JSON object (python-json-logger), for a log
shipper to index: time, level, logger, message, the process, and where the line comes
from (framework/log_context.py): the request id (carried from the API request into the
tasks it queued), the order's reference, the step and its attempt. JSON escaping keeps a
control character in a logged value from starting a forged line. The default, plain,
is for `make run` on a terminal.

A refused request (PermissionDenied: a 403) is one warning line without a traceback: it is
an answer, not a fault. Every value in a line has its control characters escaped (framework/log_sanitizing.py), so
a client's input cannot forge a line. Chatty libraries are held at WARNING: the SQL of every query, and WeasyPrint's and
fontTools' notes on every receipt, would drown the application's own lines.
"""

from typing import Any

from django.core.exceptions import ImproperlyConfigured

from config.env import env_str

LOG_FORMAT = env_str("LOG_FORMAT", "plain") or "plain"
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}.")

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "framework.log_context.ContextFilter"},
        "refusals": {"()": "framework.log_sanitizing.RefusalWithoutTraceback"},
    },
    "formatters": {
        "plain": {
            "()": "framework.log_sanitizing.OneLineFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(process)d %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context", "refusals"]}
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Named so that Django's own handlers on it (a console one while DEBUG is on, mail to
        # ADMINS) are taken off: its records reach the root's console once, not twice.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}
