"""django-q2 entry points for what every app shares: thin, the work is in its module."""

from framework import cache_tables


def delete_expired_cache_entries() -> None:
    cache_tables.delete_expired_cache_entries()
