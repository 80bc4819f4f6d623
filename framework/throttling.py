"""Rate limits of the API: DRF throttles on the shared cache, by client address or by a
field of the request body.

Rates are read from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] when a request comes, not
when this module is imported (DRF's SimpleRateThrottle binds them at import), so a setting
changed at run time, by a test or an operator's reload, applies. The cache is Django's
default one: the database by default, Redis when REDIS_URL is set, shared by every web
process, so a limit holds across processes and machines. Counting is DRF's (a read, then a
write): requests racing each other in the same instant may each be let through once.
"""

import hashlib
import logging
from typing import cast

from rest_framework.exceptions import APIException
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


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


logger = logging.getLogger(__name__)


class RateThrottle(SimpleRateThrottle):
    """A throttle whose rate is looked up by `scope` on each request; None means no limit.

    A cache that cannot be reached (Redis restarting) lets the request through: a limit is
    not worth refusing every shopper while the counts are away.
    """

    scope: str  # every throttle here names its rate

    def __init__(self) -> None:
        # DRF reads its rates as "20/min" strings (or None); its stubs say numbers.
        rates = cast(dict[str, str | None], api_settings.DEFAULT_THROTTLE_RATES)
        self.rate = rates.get(self.scope)
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except APIException:
            raise  # the request's own fault (a body that is not JSON): the client's answer
        except Exception as error:  # the cache backend's own errors differ by backend
            logger.warning("rate limit %s not counted, its cache is unavailable: %s", self.scope, error)
            return True

    def _key(self, ident: str) -> str:
        return self.cache_format % {"scope": self.scope, "ident": ident}


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
