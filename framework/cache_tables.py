"""The database cache's table, made by `migrate` like every other table.

The shared cache (config/settings/cache.py) is a database table unless Redis is set up;
`createcachetable` makes it and does nothing when it exists or when no cache uses the
database, so running it after every migrate is safe.
"""

from django.core.management import call_command


def create_cache_tables(sender=None, *, using: str = "default", **kwargs) -> None:
    """A `post_migrate` receiver: create the database cache's table if it is missing."""
    call_command("createcachetable", database=using, verbosity=0)
