"""Card holds are settled before they lapse: an order still in PAID whose authorisation lapses
within AUTHORIZATION_LAPSE_ACT_HOURS is captured or voided by the policy in settings.

`AUTHORIZATION_LAPSE_POLICY=capture` runs the order's capture step now (stock deducted,
payment captured; the pipeline then stores the receipt and emails the confirmation); an
order that still cannot move on, and every order under `void`, ends FAILED: its stock
goes back, its hold is voided by compensation and the shopper gets the failure email. Run
by the cluster each quarter hour (framework/schedules.py); the alarm on lapsing holds fires
only for what this could not settle.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orders import history, pipeline
from orders.flow import DEDUCT_STOCK_AND_CAPTURE
from orders.models import Order, OrderState, lock_order
from orders.transitions import end_order
from payments.authorizations import hold_lapses_before_q

logger = logging.getLogger(__name__)

STEP = "settle_lapsing_hold"
FAILURE_CODE = "authorisation_lapsing"
SHOPPER_REASON = "Your card's authorisation was about to expire before we could take the payment, so we released it."
# At most this many orders a run; the next run (a quarter hour later) takes the rest.
BATCH = 100


def orders_with_lapsing_holds(now: datetime) -> list[Order]:
    """Orders held in PAID whose authorisation lapses within AUTHORIZATION_LAPSE_ACT_HOURS, soonest first."""
    moment = now + timedelta(hours=settings.AUTHORIZATION_LAPSE_ACT_HOURS)
    return list(
        Order.objects.filter(state=OrderState.PAID)
        .filter(hold_lapses_before_q(moment, prefix="payment__"))
        .order_by("payment__authorization_expires_at", "pk")[:BATCH]
    )


def settle_lapsing_holds(now: datetime | None = None) -> int:
    """Capture or void each order whose hold is about to lapse, by policy; how many were settled."""
    settled = 0
    for order in orders_with_lapsing_holds(now or timezone.now()):
        try:
            settled += settle_lapsing_hold(order)
        except Exception:  # one order's trouble must not keep the others' holds from being settled
            logger.exception("settling the lapsing hold of %s failed", order.reference)
    return settled


def settle_lapsing_hold(order: Order) -> bool:
    """Capture (policy "capture", when the order may move on) or void and end this order; True when settled."""
    if settings.AUTHORIZATION_LAPSE_POLICY == "capture":
        # The step's own rules hold: a capture refused for good fails the order, with compensation.
        pipeline.run_step(order.pk, DEDUCT_STOCK_AND_CAPTURE.name)
        order.refresh_from_db()
        if order.state != OrderState.PAID:
            logger.info("lapse policy ran the capture of %s: now %s", order.reference, order.state)
            return True
    return _void_and_end(order)


def _void_and_end(order: Order) -> bool:
    with transaction.atomic():
        locked = lock_order(order.pk)
        if locked.state != OrderState.PAID:
            return False  # moved on meanwhile: nothing lapses
        run = history.start_run(STEP, locked, actor=history.LAPSE_POLICY)
        # Entering FAILED releases the stock now; compensation voids the hold and the failure
        # email tells the shopper, once this commits (orders/transitions.py).
        end_order(locked, OrderState.FAILED, run, code=FAILURE_CODE, reason=SHOPPER_REASON)
    logger.warning("lapse policy voided %s: its authorisation was about to lapse uncaptured", order.reference)
    return True
