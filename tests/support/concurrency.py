"""Several callers at the same instant, for tests of races."""

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.db import connection

T = TypeVar("T")


def all_at_once(func: Callable[[int], T], count: int) -> list[T]:
    """Call `func(0)` .. `func(count - 1)` from `count` threads released together.

    Each thread works on its own database connection, closed when it is done. Returns the
    results in order; the first error a call raised is raised here.
    """
    start = threading.Barrier(count, timeout=30)

    def call(number: int) -> T:
        try:
            start.wait()
            return func(number)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as callers:
        return list(callers.map(call, range(count)))
