"""The database cache's table: made by `migrate` like every other table, and kept to its
live entries.

The shared cache (config/settings/cache.py) is a table in the database unless Redis is set
up; `createcachetable` makes it and does nothing when it exists or when no cache uses the
database, so running it after every migrate is safe.

Django deletes a database cache's expired entries only when it culls, past MAX_ENTRIES
(ten million here, so that a busy sale never culls an open circuit breaker), or when a read
finds one. The rate limits' counters are one entry per client and window, never read once
their window is gone: left alone, the table would keep every client of every minute. A
schedule (framework/schedules.py) deletes the expired entries every few minutes.
"""

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.core.management import call_command
from django.db import connections, router
from django.utils import timezone

# Rows deleted per statement: each a short transaction, so a backlog of millions never
# holds a long one beside the shop's requests.
DELETE_BATCH = 5_000


def create_cache_tables(sender=None, *, using: str = "default", **kwargs) -> None:
    """A `post_migrate` receiver: create the database cache's table if it is missing."""
    call_command("createcachetable", database=using, verbosity=0)


def delete_expired_cache_entries() -> int:
    """Delete every expired entry of every database cache, in batches; how many went."""
    deleted = 0
    for alias in settings.CACHES:
        cache = caches[alias]
        if isinstance(cache, DatabaseCache):
            deleted += _delete_expired(cache)
    return deleted


def _delete_expired(cache: DatabaseCache) -> int:
    connection = connections[router.db_for_write(cache.cache_model_class)]
    table, key, expires = (connection.ops.quote_name(name) for name in (cache._table, "cache_key", "expires"))  # type: ignore[attr-defined]  # Django's
    sql = (
        f"DELETE FROM {table} WHERE {key} IN "
        f"(SELECT {key} FROM {table} WHERE {expires} < %s ORDER BY {expires} LIMIT {DELETE_BATCH})"
    )
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    deleted = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, [now])
            batch = cursor.rowcount
        deleted += batch
        if batch < DELETE_BATCH:
            return deleted
