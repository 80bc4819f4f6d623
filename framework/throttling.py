"""Rate limits of the API: a counter per window in the shared cache, by client address or
by a field of the request body, behind DRF's throttle interface (`Retry-After` included).

DRF's SimpleRateThrottle keeps every request's timestamp of the window in one cache entry,
read, unpickled, pickled and written back on every request: its cost grows with the rate
allowed (thousands of entries at a generous limit, a database row rewritten on the database
cache). Here each window of `duration` seconds is one integer per client, so a request
reads two small counters (this window's and the last one's) and adds one to one: the
sliding-window estimate `last × (part of the last window still inside the period) + this`
stands for the requests of the last `duration` seconds.

Counting and charging are apart. A throttle's `allow_request` only reads. A view whose
throttles count every request it lets through (lookups, where a 404 must count too) sets
nothing; a view that counts only what succeeded (placing an order: a request refused by one
limit, by validation, or a replay must not use up another limit's quota) lists its throttles
with `throttles_charged_on_success = True` and calls `charge_throttles(request)` once it has
succeeded.

A view's throttles read their counters together, in one round trip (`read_entries`: the
first throttle asked reads for all of them), and a throttle may read other cache entries
the view needs in the same round trip (`read_along`: the placement's lapse marks); the view
finds them with `entries_read_along`. Accepting an order costs the cache two round trips:
one read, one pipelined charge (tests/fast/test_accept_cache_budget.py).

Rates are read from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] when a request comes, not
when this module is imported (DRF's SimpleRateThrottle binds them at import), so a setting
changed at run time, by a test or an operator's reload, applies. The cache is Django's
default one: the database by default, Redis when REDIS_URL is set, shared by every web
process, so a limit holds across processes and machines. Requests racing each other in the
same instant may each pass the check once before either is charged.
"""

import base64
import datetime
import functools
import hashlib
import logging
import pickle
import time
from typing import Any, NamedTuple, cast

from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.core.cache.backends.redis import RedisCache
from django.db import connections, router
from django.utils.timezone import now as tz_now
from rest_framework.exceptions import APIException
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from framework.prepared_statements import statement_cursor
from framework.unsynced_commits import UNSYNCED_COMMIT, commits_unsynced

logger = logging.getLogger(__name__)

PENDING_CHARGES = "_throttle_charges"
READ_ALONG = "_throttle_read_along"
ENTRIES_READ = "_throttle_entries_read"


def client_address(request) -> str | None:
    """The client's address as the throttles count it: REMOTE_ADDR, or the address the
    trusted proxy in front (TRUSTED_PROXY_COUNT of them, nginx in production) put last in
    X-Forwarded-For. Addresses a client writes into that header itself are never used."""
    xff = request.headers.get("x-forwarded-for")
    num_proxies = api_settings.NUM_PROXIES or 0
    if num_proxies == 0 or not xff:
        return request.META.get("REMOTE_ADDR")
    addresses = [a.strip() for a in xff.split(",")]
    return addresses[-min(num_proxies, len(addresses))]


class RateThrottle(SimpleRateThrottle):
    """A throttle whose rate is looked up by `scope` on each request; None means no limit.

    A cache that cannot be reached (Redis restarting) lets the request through: a limit is
    not worth refusing every shopper while the counts are away.
    """

    # A class attribute, as DRF's: the tests move time by replacing it.
    timer = time.time

    @property
    def cache(self):  # type: ignore[override]  # DRF's is a plain attribute, set once; ours follows settings
        # Looked up on each use, as the rate is: a settings change (a test's) replaces it.
        return caches["default"]

    scope: str  # every throttle here names its rate
    # Set from the rate in __init__; a throttle without a rate never reads them.
    num_requests: int
    duration: int

    def __init__(self) -> None:
        # DRF reads its rates as "20/min" strings (or None); its stubs say numbers.
        rates = cast(dict[str, str | None], api_settings.DEFAULT_THROTTLE_RATES)
        self.rate = rates.get(self.scope)
        num_requests, duration = self.parse_rate(self.rate)
        self.num_requests, self.duration = num_requests or 0, duration or 1
        self.counts = (0, 0)
        self.elapsed = 0.0

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        try:
            keys = self.window_keys(request, view)
            if keys is None:
                return True
            this_key, last_key, along = keys
            found = self.read_entries(request, view, [this_key, last_key, *along])
            request.__dict__.setdefault(READ_ALONG, {}).update({entry: found.get(entry) for entry in along})
        except APIException:
            raise  # the request's own fault (a body that is not JSON): the client's answer
        except Exception as error:  # the cache backend's own errors differ by backend
            logger.warning("rate limit %s not counted, its cache is unavailable: %s", self.scope, error)
            return True
        self.counts = (int(found.get(this_key) or 0), int(found.get(last_key) or 0))
        if self.estimate() + 1 > self.num_requests:
            return False
        # Kept while it is this window or the last one; with the count read, which the
        # database cache's charge adds to in one statement (add_to_counters).
        charge = Charge(this_key, 2 * self.duration, self.counts[0] if found.get(this_key) is not None else None)
        if getattr(view, "throttles_charged_on_success", False):
            request.__dict__.setdefault(PENDING_CHARGES, []).append(charge)
        else:
            add_to_counters(self.cache, [charge])
        return True

    def window_keys(self, request, view) -> tuple[str, str, list[str]] | None:
        """This window's and the last one's counter keys and the entries read along, or
        None when the request is not counted (no key); sets the window's elapsed seconds."""
        key = self.get_cache_key(request, view)
        if key is None:
            return None
        window, self.elapsed = divmod(self.timer(), self.duration)  # type: ignore[misc]  # DRF's class-attribute clock
        return f"{key}:{int(window)}", f"{key}:{int(window) - 1}", self.read_along(request)

    def read_entries(self, request, view, wanted: list[str]) -> dict[str, Any]:
        """The cache entries `wanted` (None: not there). The first of a view's throttles to
        ask reads every one of its throttles' entries in one round trip, not one each."""
        read = request.__dict__.get(ENTRIES_READ)
        if read is not None and all(key in read for key in wanted):
            return read
        keys = list(wanted)
        if read is None:
            others = [t for t in view.get_throttles() if type(t) is not type(self) and isinstance(t, RateThrottle)]
            for other in others:
                if other.rate is not None and (other_keys := other.window_keys(request, view)) is not None:
                    keys += [other_keys[0], other_keys[1], *other_keys[2]]
        found = self.cache.get_many(keys)
        read = request.__dict__.setdefault(ENTRIES_READ, {})
        read.update({key: found.get(key) for key in keys})
        return read

    def read_along(self, request) -> list[str]:
        """Keys of entries the view needs, read in this throttle's round trip (none here)."""
        return []

    def estimate(self) -> float:
        """The requests of the last `duration` seconds, estimated from the two windows' counts."""
        this, last = self.counts
        return last * (self.duration - self.elapsed) / self.duration + this

    def wait(self) -> float:
        """Seconds until one more request fits, at most `duration` (by then every request
        counted so far is older than the period)."""
        this, last = self.counts
        room = self.num_requests - 1 - this
        if room >= 0 and last:
            # Within this window, once enough of the last one has slid out.
            needed = self.duration * (1 - room / last) - self.elapsed
        else:
            # In the next window, when this one is the last one and has slid out enough.
            needed = self.duration - self.elapsed + max(0.0, self.duration * (1 - (self.num_requests - 1) / this))
        return min(max(needed, 1.0), float(self.duration))

    def _key(self, ident: str) -> str:
        return self.cache_format % {"scope": self.scope, "ident": ident}


class Charge(NamedTuple):
    """One to add to a counter: its key, the seconds to keep it, and the count read from it
    earlier in the request (None: it was not there)."""

    key: str
    seconds: int
    seen: int | None = None


def add_to_counters(cache, charges: list[Charge]) -> None:
    """Add one to each counter: on Redis in one round trip (one script: INCR and EXPIRE); on
    the database cache where the count is still the one read, in one statement on
    PostgreSQL and one each elsewhere (else, and on other caches, through the cache's own
    add, or incr when the counter was there)."""
    try:
        if isinstance(cache, RedisCache):
            # Django's RedisCache has no pipelining: its incr alone is two round trips. One
            # script, not four pipelined commands: one reply for redis-py to parse (170 → 96
            # Python calls for two counters).
            client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]  # Django's private client
            keys = [cache.make_and_validate_key(charge.key) for charge in charges]
            _add_one_script(client)(keys=keys, args=[charge.seconds for charge in charges], client=client)
            return
        if isinstance(cache, DatabaseCache):
            charges = _add_on_database(cache, charges)
        for key, seconds, seen in charges:
            # Not there when this request read it: the window's first, added at once (Django's
            # add, which also culls the table) without incr's read that would find nothing.
            if seen is None and cache.add(key, 1, seconds):
                continue
            try:
                cache.incr(key)
            except ValueError:  # the window's first request
                if not cache.add(key, 1, seconds):
                    cache.incr(key)
    except Exception as error:  # the cache backend's own errors differ by backend
        logger.warning("rate limits not charged, their cache is unavailable: %s", error)


# INCR and EXPIRE of each counter (KEYS, the seconds to keep each in ARGV), as one command.
ADD_ONE = "for i, key in ipairs(KEYS) do redis.call('INCR', key) redis.call('EXPIRE', key, ARGV[i]) end"
_scripts: list[Any] = []


def _add_one_script(client) -> Any:
    """redis-py's `Script` of ADD_ONE (EVALSHA, loading it once where Redis lacks it), made
    once per process; called with the client to run it on."""
    if not _scripts:
        _scripts.append(client.register_script(ADD_ONE))
    return _scripts[0]


def _encoded_count(count: int, *, protocol: int) -> str:
    """A count as Django's database cache writes a value: a pickle, base64."""
    return base64.b64encode(pickle.dumps(count, protocol)).decode("latin1")


def _add_on_database(cache: DatabaseCache, charges: list[Charge]) -> list[Charge]:
    """Add one to each counter on the database cache where it still holds the count read
    earlier in the request; the charges that could not be added so (left for Django's own
    add and incr). On PostgreSQL all of them in one statement, elsewhere one each."""
    connection = connections[router.db_for_write(cache.cache_model_class)]
    if not charges:
        return []
    if connection.vendor != "postgresql":
        return [charge for charge in charges if not _add_if_unchanged(cache, charge)]
    added = _add_in_one_statement(cache, connection, charges)
    return [charge for charge in charges if cache.make_and_validate_key(charge.key) not in added]


def _add_in_one_statement(cache: DatabaseCache, connection, charges: list[Charge]) -> set[str]:
    """The keys of `charges` added to in one statement, a data-modifying CTE per counter:
    one more than the count read, while the row still holds it and lives (as
    `_add_if_unchanged`); a counter that was not there is inserted at one, over an expired
    row of its key but not a live one (what Django's add does, without the count of the
    whole table it runs before every add, which grows with every window's counters)."""
    quote = connection.ops.quote_name
    table, key, value, expires = quote(cache._table), quote("cache_key"), quote("value"), quote("expires")  # type: ignore[attr-defined]  # Django's
    now = tz_now().replace(microsecond=0)
    encoded = functools.partial(_encoded_count, protocol=cache.pickle_protocol)
    parts: list[str] = []
    params: list[Any] = []
    for n, charge in enumerate(charges):
        if charge.seen is None:
            parts.append(
                f"c{n} AS (INSERT INTO {table} ({key}, {value}, {expires}) VALUES (%s, %s, %s) "
                f"ON CONFLICT ({key}) DO UPDATE SET {value} = EXCLUDED.{value}, {expires} = EXCLUDED.{expires} "
                f"WHERE {table}.{expires} < %s RETURNING {key})"
            )
            until = now + datetime.timedelta(seconds=charge.seconds)
            params += [cache.make_and_validate_key(charge.key), encoded(1), until, now]
        else:
            parts.append(
                f"c{n} AS (UPDATE {table} SET {value} = %s "
                f"WHERE {key} = %s AND {value} = %s AND {expires} > %s RETURNING {key})"
            )
            params += [encoded(charge.seen + 1), cache.make_and_validate_key(charge.key), encoded(charge.seen), now]
    keys_added = " UNION ALL ".join(f"SELECT {key} FROM c{n}" for n in range(len(charges)))
    if commits_unsynced(connection):
        # A count lost in a crash lets a request more through: not worth a wait for the disk.
        keys_added = f"SELECT {key} FROM ({keys_added}) AS added WHERE {UNSYNCED_COMMIT} IS NOT NULL"
    # One shape per mix of counters seen and new: prepared (framework.prepared_statements).
    with statement_cursor(connection.alias) as cursor:
        cursor.execute(f"WITH {', '.join(parts)} {keys_added}", params)
        return {added for (added,) in cursor.fetchall()}


def _add_if_unchanged(cache: DatabaseCache, charge: Charge) -> bool:
    """On the database cache, the counter's row set to one more than the count read earlier
    in the request, in one UPDATE that matches only while the row still holds that count
    (and has not expired); False when it did not (no row, or another request's charge came
    first): then the cache's own incr, four statements, adds the one.

    Django's `incr` is a read and a `set`, and its `set` a count of the table, a read and a
    write: about 450 Python calls for each counter, on every order placed. The value is
    written as Django's database cache writes it (a pickle, base64), the expiry kept."""
    if charge.seen is None:
        return False
    db = router.db_for_write(cache.cache_model_class)
    connection = connections[db]
    quote = connection.ops.quote_name
    encoded = functools.partial(_encoded_count, protocol=cache.pickle_protocol)
    now = connection.ops.adapt_datetimefield_value(tz_now())
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(cache._table)} SET {quote('value')} = %s "  # type: ignore[attr-defined]  # Django's
            f"WHERE {quote('cache_key')} = %s AND {quote('value')} = %s AND {quote('expires')} > %s",
            [encoded(charge.seen + 1), cache.make_and_validate_key(charge.key), encoded(charge.seen), now],
        )
        return cursor.rowcount == 1


def entries_read_along(request) -> dict[str, object]:
    """The entries the request's throttles read along with their counts (None: not there);
    a key missing was not read (no rate, or the cache unavailable)."""
    return request.__dict__.get(READ_ALONG, {})


def charge_throttles(request) -> None:
    """Count a request that succeeded against the throttles that let it through and wait
    for its outcome (a view's `throttles_charged_on_success`)."""
    charges = request.__dict__.pop(PENDING_CHARGES, [])
    if charges:
        add_to_counters(caches["default"], charges)


class AddressRateThrottle(RateThrottle):
    """Counts the requests of one client address."""

    def get_cache_key(self, request, view):
        return self._key(client_address(request) or "unknown")


class BodyFieldRateThrottle(RateThrottle):
    """Counts the requests naming one value of a JSON body field (`field`), case and
    surrounding spaces ignored; a request without it is left to the other throttles."""

    field: str = ""

    def get_cache_key(self, request, view):
        data = request.data
        value = data.get(self.field) if isinstance(data, dict) else None
        if not isinstance(value, str) or not value.strip():
            return None
        return self._key(hashlib.sha256(value.strip().lower().encode()).hexdigest())
