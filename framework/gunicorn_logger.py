"""gunicorn's logger, without building the access lines that nobody writes.

gunicorn (27) builds every request's access line (its atoms: the time formatted, the
request's and response's headers copied into a dict) whenever a log configuration is given,
as gunicorn.conf.py gives one under LOG_FORMAT=json, and only then asks the logger whether it
writes INFO; the shop's access lines are off (nginx in front writes those), so that work went
on every request for nothing. This logger asks first.
"""

import logging

from gunicorn.glogging import Logger  # type: ignore[import-untyped]  # gunicorn ships no types


class AccessLinesWhenLogged(Logger):
    """gunicorn's Logger, building an access line only when `gunicorn.access` logs INFO."""

    def access(self, resp, req, environ, request_time) -> None:
        if self.access_log.isEnabledFor(logging.INFO):
            super().access(resp, req, environ, request_time)
