"""gunicorn's configuration for the shop (gunicorn reads ./gunicorn.conf.py by default).

The settings are loaded here, in the master, before any worker forks: they set
PROMETHEUS_MULTIPROC_DIR (config/settings/metrics.py), which prometheus_client must see
before its first import for the workers' counts to go to the shared folder. Starting, the
master removes the files of processes that no longer run; a worker that exits is marked
dead, as prometheus_client's multiprocess mode asks. Under LOG_FORMAT=json gunicorn's own
lines are JSON lines too (its access lines stay off, as they are without LOG_FORMAT: nginx
in front writes those).
"""

import os
import sys

from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
settings.METRICS_DIR  # noqa: B018  (loads the settings, which set the metrics folder)


def on_starting(server):
    from framework.metrics import forget_dead_processes

    removed = forget_dead_processes()
    server.log.info("metrics in %s (%d files of dead processes removed)", settings.METRICS_DIR, removed)


def worker_exit(server, worker):
    """A worker that stops cleanly leaves without Python's teardown of every module it loaded.

    That teardown takes one to two seconds of CPU here, four to eight on a loaded machine, and
    gunicorn waits for it: a container's SIGTERM then ran into its 10 s stop budget and was
    SIGKILLed. The worker has answered its last request; its metrics live in shared files and
    the kernel closes its connections. Any other exit (a boot error) keeps its code and teardown.
    """
    leaving = sys.exc_info()[1]
    if isinstance(leaving, SystemExit) and leaving.code in (0, None):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


if settings.LOG_FORMAT == "json":
    from framework.gunicorn_logger import AccessLinesWhenLogged

    # The access lines stay off (below); without this, each request built one anyway.
    logger_class = AccessLinesWhenLogged
    _handler = {"class": "logging.StreamHandler", "formatter": "json", "filters": ["context"]}
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": settings.LOGGING["filters"],
        "formatters": {"json": settings.LOGGING["formatters"]["json"]},
        "handlers": {
            "console": {**_handler, "stream": "ext://sys.stdout"},
            "error_console": {**_handler, "stream": "ext://sys.stderr"},
        },
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"level": "WARNING", "handlers": ["console"], "propagate": False},
        },
    }
