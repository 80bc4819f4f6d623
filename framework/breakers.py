"""Circuit breakers around the providers the pipeline calls: Stripe, SMTP, S3 and SNS.

A breaker counts its provider's failed and answered calls in a sliding window of
BREAKER_WINDOW_SECONDS (ten buckets). It opens once, within the window, at least
BREAKER_FAILURES calls failed AND they were at least BREAKER_FAILURE_RATIO of the calls
counted: one bad minute of a busy shop, not one unlucky call of a quiet one. While open,
no call goes out: the pipeline's steps wait (`orders.waits`) instead of spending their
attempts. After BREAKER_COOL_DOWN_SECONDS it is half-open: the first caller takes the one
probe (an atomic `add` of a key that lapses with the probe's lease, so a probe whose worker
died frees the way for another); the probe's success closes the breaker and clears its
window, its failure opens it again for another cool-down.

The state lives in Django's default cache, shared by every process and cluster: Redis when
REDIS_URL is set, the database cache otherwise. (pybreaker's Redis storage counts
consecutive failures only, with no window nor ratio, and needs Redis: it fits neither the
rule nor the embedded default.) Counting on the database cache is not atomic; a lost count
in a burst of failures delays the opening by a call, which the window absorbs.

Answers are only counted while failures stand in the window (`Reading.failures`), so a
healthy provider costs one cache read per call; the ratio is therefore that of the calls
since the window's first failure, which is the part of the window that matters.
"""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.core.cache import BaseCache, caches

logger = logging.getLogger(__name__)

BUCKETS = 10


class Provider(StrEnum):
    """The outside services a breaker guards (by the role they play, whatever the backend)."""

    STRIPE = "stripe"  # the payment provider (Stripe, or the simulated gateway)
    SMTP = "smtp"  # the mail server
    S3 = "s3"  # receipt storage
    SNS = "sns"  # the order-state topic


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class Reading:
    """A breaker as one cache read found it: its state, and its window's counts."""

    provider: str
    state: BreakerState
    opened_at: float | None
    failures: int
    calls: int


class CircuitBreaker:
    """One provider's breaker, on a shared cache (Django's default unless given)."""

    def __init__(self, provider: str, *, cache: BaseCache | None = None, clock: Callable[[], float] = time.time):
        self.provider = provider
        self._cache = cache
        self._clock = clock

    @property
    def cache(self) -> BaseCache:
        return self._cache or caches["default"]

    def _key(self, *parts: object) -> str:
        return ":".join(("breaker", self.provider, *map(str, parts)))

    def _bucket_seconds(self) -> float:
        return max(settings.BREAKER_WINDOW_SECONDS / BUCKETS, 0.1)

    def _window_keys(self, now: float) -> list[tuple[str, str]]:
        current = int(now // self._bucket_seconds())
        return [(self._key("failures", b), self._key("calls", b)) for b in range(current - BUCKETS + 1, current + 1)]

    def read(self) -> Reading:
        """The breaker's state and counts, in one cache read."""
        return self.read_with(())[0]

    def read_with(self, others: Sequence[str]) -> tuple[Reading, dict[str, Any]]:
        """`read`, and the entries `others` of the same cache found with it (absent ones
        left out): one round trip for a caller that needs both before a call."""
        now = self._clock()
        windows = self._window_keys(now)
        keys = [self._key("opened"), *(k for pair in windows for k in pair)]
        found = self.cache.get_many([*keys, *others])
        opened_at = found.get(self._key("opened"))
        failures = sum(int(found.get(f, 0)) for f, _ in windows)
        calls = sum(int(found.get(c, 0)) for _, c in windows)
        if opened_at is None:
            state = BreakerState.CLOSED
        elif now < opened_at + settings.BREAKER_COOL_DOWN_SECONDS:
            state = BreakerState.OPEN
        else:
            state = BreakerState.HALF_OPEN
        return Reading(self.provider, state, opened_at, failures, calls), {k: found[k] for k in others if k in found}

    def may_call(self, reading: Reading, *, probe_seconds: float) -> bool:
        """Whether a call may go out now: always while closed, never while open; while
        half-open, only for the one caller that takes the probe (for `probe_seconds`)."""
        if reading.state is BreakerState.CLOSED:
            return True
        if reading.state is BreakerState.OPEN:
            return False
        return self.cache.add(self._key("probe"), self._clock(), timeout=max(int(probe_seconds), 1))

    def _count(self, key: str) -> None:
        timeout = int(settings.BREAKER_WINDOW_SECONDS + self._bucket_seconds()) + 1
        self.cache.add(key, 0, timeout=timeout)
        try:
            self.cache.incr(key)
        except ValueError:  # lapsed between the two calls: count it afresh
            self.cache.set(key, 1, timeout=timeout)

    def record_failure(self) -> bool:
        """Count a failed call; True when this failure opened the breaker (once per opening)."""
        now = self._clock()
        failures_key, calls_key = self._window_keys(now)[-1]
        self._count(failures_key)
        self._count(calls_key)
        reading = self.read()
        if reading.state is BreakerState.HALF_OPEN:
            # The probe failed (or a call from before the opening did): another cool-down.
            self.cache.set(self._key("opened"), now, timeout=None)
            self.cache.delete(self._key("probe"))
            return False
        if reading.state is BreakerState.OPEN or reading.failures < settings.BREAKER_FAILURES:
            return False
        if reading.failures / max(reading.calls, 1) < settings.BREAKER_FAILURE_RATIO:
            return False
        opened = self.cache.add(self._key("opened"), now, timeout=None)
        if opened:
            logger.error(
                "circuit breaker %s opened: %d of %d calls failed within %ss",
                self.provider,
                reading.failures,
                reading.calls,
                settings.BREAKER_WINDOW_SECONDS,
            )
        return opened

    def record_success(self, reading: Reading) -> bool:
        """Count an answered call (where failures stand in the window); True when it closed
        the breaker: the provider answers again."""
        if reading.state is BreakerState.CLOSED:
            if reading.failures:
                self._count(self._window_keys(self._clock())[-1][1])
            return False
        self._forget()
        logger.warning("circuit breaker %s closed: %s answers again", self.provider, self.provider)
        return True

    def reset(self) -> None:
        """Close the breaker and forget its window (tests; an operator's last resort)."""
        self._forget()

    def _forget(self) -> None:
        window = [key for pair in self._window_keys(self._clock()) for key in pair]
        self.cache.delete_many([self._key("opened"), self._key("probe"), *window])


def breaker(provider: str) -> CircuitBreaker:
    """The breaker of one provider, on the shared cache."""
    return CircuitBreaker(provider)


def read_breakers() -> list[Reading]:
    """Every provider's breaker as it stands (the monitoring page, the metric, the alarm)."""
    return [breaker(provider).read() for provider in Provider]
