"""The flow as data: per state, the steps that move an order on, where each may move it, its
retry policy (as Step Functions' Retry), and what happens once its retries are exhausted.

What entering each end sets off is `transitions.ON_ENTERING`; a test checks every step's
moves against `transitions.TRANSITIONS`.
"""

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from django.conf import settings

from orders import steps
from orders.history import StepRun
from orders.models import Order
from orders.models import OrderState as S
from receipts.models import Receipt


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    interval_seconds: float
    backoff_rate: float = 2.0
    max_interval_seconds: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        delay = self.interval_seconds * self.backoff_rate ** (attempt - 1)
        return min(delay, self.max_interval_seconds) * settings.PIPELINE_BACKOFF_SCALE


class WhenExhausted(Enum):
    FAIL_ORDER = "end the order FAILED, with compensation"
    FLAG_ORDER = "keep the sale, flag the order for a manager; the sweeper retries"
    RECORD = "record the failure; the sweeper retries"


@dataclass(frozen=True)
class Step:
    name: str  # the label its history events carry (persisted: never renamed)
    run: Callable[[Order, StepRun], steps.After]
    moves_to: frozenset[str]
    retry: RetryPolicy
    when_exhausted: WhenExhausted
    is_done: Callable[[Order], bool] = lambda order: False  # a step that leaves the state as it is


def _receipt_stored(order: Order) -> bool:
    return Receipt.objects.filter(order=order, stored_at__isnull=False).exists()


FAIL_ORDER, FLAG_ORDER, RECORD = WhenExhausted.FAIL_ORDER, WhenExhausted.FLAG_ORDER, WhenExhausted.RECORD

# fmt: off
#                                  label (persisted)    the step                                 may move to                               retry policy         once exhausted
VALIDATE_ORDER = Step(             "validate_order",    steps.validate_order,                    frozenset({S.VALIDATED, S.REJECTED}),     RetryPolicy(3, 0.2), FAIL_ORDER)
PROCESS_PAYMENT = Step(            "process_payment",   steps.process_payment,                   frozenset({S.PAID, S.PAYMENT_FAILED}),    RetryPolicy(4, 0.5), FAIL_ORDER)
DEDUCT_STOCK_AND_CAPTURE = Step(   "update_inventory",  steps.deduct_stock_and_capture_payment,  frozenset({S.CONFIRMED}),                 RetryPolicy(4, 0.5), FAIL_ORDER)
GENERATE_RECEIPT = Step(           "generate_receipt",  steps.generate_receipt,                  frozenset(),                              RetryPolicy(3, 1.0), FLAG_ORDER, is_done=_receipt_stored)
SEND_CONFIRMATION = Step(          "send_notification", steps.send_confirmation,                 frozenset({S.COMPLETED}),                 RetryPolicy(5, 1.0), FLAG_ORDER)

# The jobs an end sets off, each queued as its own task (`transitions.ON_ENTERING`).
END_JOBS: tuple[Step, ...] = (
    Step("send_failure_notification",                   steps.send_failure_notification,         frozenset(),                              RetryPolicy(5, 1.0), RECORD),
    Step("refund_or_void",                              steps.refund_or_void,                    frozenset(),                              RetryPolicy(6, 1.0), FLAG_ORDER),
    Step("publish_order_state",                         steps.publish_order_state,               frozenset(),                              RetryPolicy(4, 1.0), FLAG_ORDER),
)
# fmt: on

# Which steps move an order on from each state: the first of them not done yet runs.
FLOW: dict[str, tuple[Step, ...]] = {
    S.PENDING: (VALIDATE_ORDER,),
    S.VALIDATED: (PROCESS_PAYMENT,),
    S.PAID: (DEDUCT_STOCK_AND_CAPTURE,),
    S.CONFIRMED: (GENERATE_RECEIPT, SEND_CONFIRMATION),
}

STEPS: dict[str, Step] = {step.name: step for step in (*(s for state in FLOW.values() for s in state), *END_JOBS)}


def next_step(order: Order) -> Step | None:
    """Which step moves this order on now, read from its state and data alone."""
    return next((step for step in FLOW.get(order.state, ()) if not step.is_done(order)), None)
