"""The shared cache: what the API's rate limits count in.

Every web process must see the same counts, so the cache is shared: a table in the
database by default (created by `migrate`), Redis when REDIS_URL is set (the same server
as the task broker, its own key prefix).
"""

from .queue import REDIS_URL

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
        },
        # The task clusters' status on the database broker (queue.py).
        "queue_status": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_q_status"},
    }
