"""The order states the bench polls for, taken from orders.models rather than written out.

The driver reads orders over SQL only, but the states are the app's own constants, so
Django is set up in this process once, on import, to read them.
"""

import contextlib
import os
from collections.abc import Iterator

import django

from bench.stack import ROOT, stack_env


@contextlib.contextmanager
def _stack_environment() -> Iterator[None]:
    """The stack's own environment for the length of the block, then the shell's again.

    Settings are read from the environment once, during django.setup(): under the stack's
    variables the shell's DJANGO_* ones can neither break nor steer it, and with a secret key
    given, settings write no key file into var/.
    """
    saved = dict(os.environ)
    os.environ.clear()
    # No connection is made: the database name only has to parse.
    os.environ.update(stack_env("bench-driver", ROOT / "var", "orm"))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def load_order_states() -> tuple[list[str], list[str]]:
    """Every final state, and the final states whose order the shopper is emailed about."""
    from django.apps import apps

    if not apps.ready:
        with _stack_environment():
            django.setup()
    from orders.models import FAILURE_ENDS, FINAL_STATES, OrderState

    # A cancelled order ends without a failure email (orders.pipeline.send_failure_notification).
    emailed = FAILURE_ENDS - {OrderState.CANCELLED}
    return sorted(state.value for state in FINAL_STATES), sorted(state.value for state in emailed)


FINAL_STATES, FAILURE_EMAIL_STATES = load_order_states()
