"""Logging: plain lines to the console (the process manager keeps them), at LOG_LEVEL.

Every value in a line has its control characters escaped (framework/log_sanitizing.py), so
a client's input cannot forge a line. Chatty libraries are held at WARNING: the SQL of every query, and WeasyPrint's and
fontTools' notes on every receipt, would drown the application's own lines.
"""

from config.env import env_str

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"one_line": {"()": "framework.log_sanitizing.EscapeControlCharacters"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["one_line"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}
