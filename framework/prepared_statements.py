"""A cursor whose statements PostgreSQL parses once per connection, for SQL written once per process.

Django sends every statement with its values bound into the text (psycopg's client-side
binding), so PostgreSQL parses, analyses and plans each one afresh. The statements of
framework.compiled_query and framework.compiled_writes are written once per process with a
placeholder per value, so they can be sent apart from their values and prepared: psycopg
prepares a statement the second time this cursor sends it on a connection
(`prepare_threshold` 1, config/settings/database.py: a connection kept for
DATABASE_CONN_MAX_AGE), and each execution then skips the parsing and analysis. A rollback
makes psycopg drop a connection's prepared statements (prepared again on their next uses).
Every other statement keeps Django's client-side binding, which never prepares.

Each execution is still planned for its values and the tables as they are then
(`plan_cache_mode` force_custom_plan, same file). A generic plan, which PostgreSQL would
otherwise keep after five executions, is made for the tables as they were: made while
they were small (a new shop's first orders, the bench's emptied tables) it kept reading
whole tables as they grew, until the next ANALYZE. Accepting 4,000 orders in one process
(bench.accept_inprocess) on a database without autovacuum, PostgreSQL's CPU per order grew
0.72 -> 2.38 ms slice by slice with generic plans; with custom plans it stayed 0.91 to 1.17
ms, against 1.12 to 1.42 ms unprepared.

The cursor is Django's own wrapper around a server-binding psycopg cursor, so its
statements are counted, logged and their errors translated as any other's (the statement
budgets of tests/ see them), and it runs in the connection's transaction.
"""

from typing import Any

from django.db import connections
from django.db.backends.postgresql.base import CursorDebugWrapper
from django.db.backends.utils import CursorWrapper
from psycopg import postgres
from psycopg.pq import Format

# Django's psycopg 3 classes, which django-stubs does not list.
from django.db.backends.postgresql.base import ServerBindingCursor  # type: ignore[attr-defined]  # isort: skip
from django.db.backends.postgresql.psycopg_any import register_tzloader  # type: ignore[import-untyped]  # isort: skip

_TIMESTAMPTZ_OID = postgres.types["timestamptz"].oid


def statement_cursor(using: str) -> CursorWrapper:
    """A cursor of the `using` connection that sends values apart from the SQL (and so
    prepares it) on PostgreSQL; the connection's usual cursor elsewhere."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return connection.cursor()
    # What BaseDatabaseWrapper._cursor and create_cursor do, with the server-binding class.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        raw = ServerBindingCursor(connection.connection)
        tzloader = connection.connection.adapters.get_loader(_TIMESTAMPTZ_OID, Format.TEXT)
        if connection.timezone != tzloader.timezone:
            register_tzloader(connection.timezone, raw)
    return _LoggedStatementCursor(raw, connection) if connection.queries_logged else connection.make_cursor(raw)


class _LoggedStatementCursor(CursorDebugWrapper):
    """Django's logging cursor (DEBUG, tests capturing statements), logging each statement
    with its values written in, as Django's client-side binding sends and logs it: psycopg
    keeps no text of a statement it runs prepared."""

    def execute(self, sql: Any, params: Any = None) -> Any:
        with self.debug_sql(self.db.ops.compose_sql(sql, params), params):
            return self._execute_with_wrappers(sql, params, many=False, executor=self._execute)
