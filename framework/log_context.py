"""What every log line says about where it comes from: the request, the order, the step.

The web's middleware (config/request_id.py) sets the request id; the pipeline binds the
order and the step it works on; the queue (framework/queue.py) carries the request id
into the tasks a request queues and restores it in the worker. `ContextFilter` puts the
values on each log record, so a JSON line carries them as fields.
"""

import logging
import uuid
from contextvars import ContextVar

FIELDS = ("request_id", "order", "step", "attempt")

_values: dict[str, ContextVar[str]] = {name: ContextVar(f"log_{name}", default="") for name in FIELDS}


def bind(**values: object) -> None:
    """Set some of the fields (`request_id`, `order`, `step`, `attempt`) for what follows in this context."""
    for name, value in values.items():
        _values[name].set("" if value is None else str(value))


def current() -> dict[str, str]:
    """Every field's value in this context ('' where unset)."""
    return {name: var.get() for name, var in _values.items()}


def restore(values: dict[str, str]) -> None:
    """Set every field back to what `current()` returned (unset fields become '')."""
    for name, var in _values.items():
        var.set(values.get(name, ""))


def new_request_id() -> str:
    return uuid.uuid4().hex


class ContextFilter(logging.Filter):
    """Adds the context's fields to every record that passes the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _values.items():
            if not hasattr(record, name):
                setattr(record, name, var.get())
        return True
