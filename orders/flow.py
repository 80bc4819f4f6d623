"""The flow as data: per state, the steps that move an order on, where each may move it, its
retry policy (as Step Functions' Retry), and what happens once its retries are exhausted.

How a retry waits follows from the last column. The sale's own steps (FAIL_ORDER: validate,
payment, inventory) sleep their short backoff in the worker (0.2 + 0.4 s, 0.5 + 1 + 2 s): the
shopper is waiting for them, a trip through the queue would add up to a tick to each retry,
and an outage of the provider fails every sale alike. The side steps (FLAG_ORDER, RECORD:
receipt, email, an end's jobs) never hold a worker through their backoff: a transient
failure writes a `ScheduledRetry` due after the backoff and frees the worker, and the
pipeline tick queues it when due (`orders.recovery`), so an outage of S3 or SMTP does not
stall the sales of other orders.

Each step also has a lease: how long a healthy attempt may take. A worker stamps it on the
order as it starts the attempt, and the tick nudges no order inside its lease (a payment
waiting on a slow provider is healthy, not lost).

What entering each end sets off is `transitions.ON_ENTERING`; a test checks every step's
moves against `transitions.TRANSITIONS`.
"""

from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import Enum

from django.conf import settings

from framework.breakers import Provider
from framework.compiled_query import CompiledQuery, Mark
from orders import steps
from orders.history import StepRun
from orders.models import HoldSide, Order
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


def _a_short_step() -> float:
    """The lease of a step with no slow call of its own (the database, a PDF, S3)."""
    return 30.0


def _a_payment_call() -> float:
    """The longest a healthy call to the payment provider takes: every network try of the SDK
    running to its timeout (the simulated gateway's hang, 60 s, stays inside it)."""
    return settings.STRIPE_TIMEOUT_SECONDS * (settings.STRIPE_MAX_NETWORK_RETRIES + 1) + 5


def _an_email() -> float:
    """The longest a healthy SMTP send takes: connect, the message, the answer, each up to EMAIL_TIMEOUT."""
    return 3 * settings.EMAIL_TIMEOUT + 5 if settings.EMAIL_TIMEOUT else _a_short_step()


@dataclass(frozen=True)
class Step:
    name: str  # the label its history events carry (persisted: never renamed)
    run: Callable[[Order, StepRun], steps.After]
    moves_to: frozenset[str]
    retry: RetryPolicy
    when_exhausted: WhenExhausted
    is_done: Callable[[Order], bool] = lambda order: False  # a step that leaves the state as it is
    lease_seconds: Callable[[], float] = _a_short_step  # how long a healthy attempt may take
    provider: Provider | None = None  # the outside service it calls, behind that provider's breaker
    held_by: HoldSide | None = None  # the side of the pipeline whose hold stops it (`orders.holds`)

    @property
    def requeues_retries(self) -> bool:
        """Whether its retries wait as a `ScheduledRetry` (side steps) rather than asleep in the worker."""
        return self.when_exhausted is not WhenExhausted.FAIL_ORDER


# Asked before every step of a confirmed order: written by the ORM once per process.
_STORED_RECEIPT = CompiledQuery(
    lambda order_id: Receipt.objects.filter(order_id=order_id, stored_at__isnull=False).values_list("pk")[:1],
    order_id=Mark(-7_340_321),
)


def _receipt_stored(order: Order) -> bool:
    return bool(_STORED_RECEIPT.rows(order_id=order.pk))


FAIL_ORDER, FLAG_ORDER, RECORD = WhenExhausted.FAIL_ORDER, WhenExhausted.FLAG_ORDER, WhenExhausted.RECORD

# fmt: off
#                                  label (persisted)    the step                                 may move to                               retry policy         once exhausted (and how retries wait)
VALIDATE_ORDER = Step(             "validate_order",    steps.validate_order,                    frozenset({S.VALIDATED, S.REJECTED}),     RetryPolicy(3, 0.2), FAIL_ORDER)
PROCESS_PAYMENT = Step(            "process_payment",   steps.process_payment,                   frozenset({S.PAID, S.PAYMENT_FAILED}),    RetryPolicy(4, 0.5), FAIL_ORDER, lease_seconds=_a_payment_call, provider=Provider.STRIPE, held_by=HoldSide.PAYMENTS)
DEDUCT_STOCK_AND_CAPTURE = Step(   "update_inventory",  steps.deduct_stock_and_capture_payment,  frozenset({S.CONFIRMED}),                 RetryPolicy(4, 0.5), FAIL_ORDER, lease_seconds=_a_payment_call, provider=Provider.STRIPE, held_by=HoldSide.CAPTURES)
GENERATE_RECEIPT = Step(           "generate_receipt",  steps.generate_receipt,                  frozenset(),                              RetryPolicy(3, 1.0), FLAG_ORDER, is_done=_receipt_stored, provider=Provider.S3, held_by=HoldSide.RECEIPTS)
SEND_CONFIRMATION = Step(          "send_notification", steps.send_confirmation,                 frozenset({S.COMPLETED}),                 RetryPolicy(5, 1.0), FLAG_ORDER, lease_seconds=_an_email, provider=Provider.SMTP, held_by=HoldSide.EMAILS)

# The jobs an end sets off, each queued as its own task (`transitions.ON_ENTERING`).
END_JOBS: tuple[Step, ...] = (
    Step("send_failure_notification",                   steps.send_failure_notification,         frozenset(),                              RetryPolicy(5, 1.0), RECORD, lease_seconds=_an_email, provider=Provider.SMTP, held_by=HoldSide.EMAILS),
    Step("refund_or_void",                              steps.refund_or_void,                    frozenset(),                              RetryPolicy(6, 1.0), FLAG_ORDER, lease_seconds=_a_payment_call, provider=Provider.STRIPE),
    Step("publish_order_state",                         steps.publish_order_state,               frozenset(),                              RetryPolicy(4, 1.0), FLAG_ORDER, provider=Provider.SNS),
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


def steps_held_by(side: str) -> list[str]:
    """The labels of the steps a hold on `side` stops."""
    return [step.name for step in STEPS.values() if step.held_by == side]


def steps_calling(provider: str) -> list[str]:
    """The labels of the steps behind `provider`'s breaker."""
    return [step.name for step in STEPS.values() if step.provider == provider]


def next_step(order: Order, *, done: Collection[Step] = ()) -> Step | None:
    """Which step moves this order on now, read from its state and data alone; `done`, the
    steps that leave the state as it is and that the caller has just seen succeed, are not
    asked again."""
    return next((step for step in FLOW.get(order.state, ()) if step not in done and not step.is_done(order)), None)
