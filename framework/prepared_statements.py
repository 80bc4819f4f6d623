"""A cursor whose statements PostgreSQL plans once per connection, for SQL written once per process.

Django sends every statement with its values bound into the text (psycopg's client-side
binding), so PostgreSQL parses and plans each one afresh: on the accepting request, planning
was some 450 µs of each order's 1 ms of statement time on the server (pg_stat_statements
with track_planning; the held-units read alone planned for 158 µs to run for 182). The
statements of framework.compiled_query and framework.compiled_writes are written once per
process with a placeholder per value, so they can be sent apart from their values and
prepared: psycopg prepares a statement the second time this cursor sends it on a connection
(`prepare_threshold` 1, config/settings/database.py: a connection kept for
DATABASE_CONN_MAX_AGE), and PostgreSQL, after five custom plans, keeps a generic one when
it costs no more. A rollback makes psycopg drop a connection's prepared statements (they
are prepared again on their next uses). Every other statement keeps Django's
client-side binding, which never prepares.

Values that never change are written into the SQL as literals rather than sent as
parameters (framework.compiled_query), so a generic plan still sees the `state = 'VALIDATED'`
a partial index is defined by.

The cursor is Django's own wrapper around a server-binding psycopg cursor, so its
statements are counted, logged and their errors translated as any other's (the statement
budgets of tests/ see them), and it runs in the connection's transaction.
"""

from typing import Any

from django.db import connections
from django.db.backends.postgresql.base import CursorDebugWrapper
from django.db.backends.utils import CursorWrapper
from psycopg import postgres, sql
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


def quote_literal(connection: Any, value: Any) -> str:
    """`value` as an SQL literal of PostgreSQL's, `%` doubled for a statement with placeholders."""
    connection.ensure_connection()
    return sql.quote(value, connection.connection).replace("%", "%%")


class _LoggedStatementCursor(CursorDebugWrapper):
    """Django's logging cursor (DEBUG, tests capturing statements), logging each statement
    with its values written in, as Django's client-side binding sends and logs it: psycopg
    keeps no text of a statement it runs prepared."""

    def execute(self, sql: Any, params: Any = None) -> Any:
        with self.debug_sql(self.db.ops.compose_sql(sql, params), params):
            return self._execute_with_wrappers(sql, params, many=False, executor=self._execute)
