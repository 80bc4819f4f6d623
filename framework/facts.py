"""Facts other systems hear of: the one hook where a domain app announces what just became
true (an order paid, a product low on stock), inside the transaction that makes it true.

The domain apps sit beneath whoever listens (the webhooks' outbox, webhooks/outbox.py), so
they cannot import it: a listener registers here when its app is ready, and a fact is
handed to every listener in the writer's own transaction. A listener that writes rows
(an outbox) writes them with the fact or not at all: a rollback takes both, a commit keeps
both. `is_wanted` lets a writer skip the work of describing a fact nobody listens for.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Fact:
    """What became true: its type (`order.paid`), the key its order is kept by (an order's
    reference), and a function that describes it (called only when someone listens)."""

    type: str
    key: str
    describe: Callable[[], dict[str, Any]]


class Listener(Protocol):
    def wants(self, fact_type: str) -> bool: ...

    def hear(self, fact: Fact) -> None: ...


_listeners: list[Listener] = []


def listen(listener: Listener) -> None:
    """Register a listener (once per process, from an app's `ready`)."""
    if listener not in _listeners:
        _listeners.append(listener)


def is_wanted(fact_type: str) -> bool:
    """Whether any listener wants facts of this type (cheap: no database read by itself)."""
    return any(listener.wants(fact_type) for listener in _listeners)


def announce(fact_type: str, *, key: str, describe: Callable[[], dict[str, Any]]) -> None:
    """Hand the fact to every listener that wants it, in the caller's transaction."""
    fact = Fact(fact_type, key, describe)
    for listener in _listeners:
        if listener.wants(fact_type):
            listener.hear(fact)
