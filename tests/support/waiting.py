"""The one way a test waits: poll a condition until it holds, within a deadline."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], *, timeout: float = 60, interval: float = 0.1, message: str | Callable[[], str] = ""
) -> T:
    """Poll `condition` until it returns something truthy, and return that.

    Past the deadline, fail with `message` (a callable is asked then, so it can describe the
    state the wait ended in). A condition may raise to stop waiting at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        if result := condition():
            return result
        if time.monotonic() >= deadline:
            described = message() if callable(message) else message
            raise AssertionError(described or f"condition not met within {timeout}s")
        time.sleep(interval)
