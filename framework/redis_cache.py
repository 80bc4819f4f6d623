"""Django's Redis cache, keeping one redis-py client per connection pool instead of one per
cache operation.

Django's `RedisCacheClient.get_client` builds a new `redis.Redis` for every get, set or
incr, and each one copies redis-py's table of reply callbacks (about 200 entries, each key
upper-cased): about 200 Python calls per cache round trip, on every request the rate limits
count (bench/accept_calls.py). A `redis.Redis` holds no state of its own but its pool,
and is safe to share between threads, so one per pool does the same work.
"""

from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class OneClientPerPool(RedisCacheClient):
    """A `RedisCacheClient` whose `get_client` returns the same client for the same pool."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]  # Django's, untyped
        client = self._clients.get(id(pool))
        if client is None:
            # Pools live as long as this object (Django keeps them in self._pools), so their ids are stable.
            client = self._clients[id(pool)] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return client


class SharedClientRedisCache(RedisCache):
    """Django's `RedisCache` on `OneClientPerPool`: the settings' backend when REDIS_URL is set."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = OneClientPerPool
