"""The shared cache: what the API's rate limits count in.

Every web process must see the same counts, so the cache is shared: a table in the
database by default (created by `migrate`), Redis when REDIS_URL is set (the same server
as the task broker, its own key prefix).
"""

from typing import Any

from .queue import REDIS_URL

# Django's database cache keeps 300 entries by default and, past that, deletes a third of
# them in key order, live or not. The circuit breakers' state lives beside every client's
# rate-limit counters, so a busy sale would cull an open breaker and close it. Expired
# entries are deleted by a schedule (framework/cache_tables.py); live ones are bounded by
# the clients of one window.
DATABASE_CACHE_OPTIONS = {"MAX_ENTRIES": 10_000_000}

CACHES: dict[str, dict[str, Any]]
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's RedisCache with one redis-py client per process, not one per operation.
            "BACKEND": "framework.redis_cache.SharedClientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "cache",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "django_cache",
            "OPTIONS": DATABASE_CACHE_OPTIONS,
        },
        # The task clusters' status on the database broker (queue.py).
        "queue_status": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_q_status"},
    }
