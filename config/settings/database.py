"""The database: SQLite in var/ by default, any dj-database-url address from DATABASE_URL
(PostgreSQL in production and on CI).

The whole connection, engine-specific options included, is built here and nowhere else;
the task broker (queue.py) only reads which engine this chose.
"""

import dj_database_url

from config.env import env_bool, env_int, env_secret

from .base import VAR_DIR

DATABASES = {
    "default": dj_database_url.parse(
        env_secret("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        # Before a kept connection serves a new request or task it is checked with one
        # `SELECT 1`, so a database that restarted or failed over meanwhile costs no request
        # an error.
        conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", True),
    )
}
_ON_SQLITE = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
# A server's connection is kept for ten minutes by default: opening one starts a server
# process and authenticates it, which costs more than a whole accepted order, and only a
# connection that lives uses its prepared statements (below). SQLite opens a file.
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 0 if _ON_SQLITE else 600)
if _ON_SQLITE:
    # The web server and the cluster share one file: wait for locks rather than fail,
    # and take the write lock at BEGIN so concurrent writers queue instead of deadlocking.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # framework/prepared_statements.py: prepare a statement the second time a connection
    # sends it through its cursor (the statements written once per process), so a connection
    # opened for one request (DATABASE_CONN_MAX_AGE=0) prepares nothing it would throw away;
    # Django's own cursors never prepare. Plan each execution afresh: a generic plan made
    # while a table was small kept scanning it as it grew. A pooler in transaction mode in
    # front of PostgreSQL must keep prepared statements (PgBouncer 1.21+: max_prepared_statements).
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["prepare_threshold"] = 1
    _options["options"] = f"{_options.get('options', '')} -c plan_cache_mode=force_custom_plan".strip()
