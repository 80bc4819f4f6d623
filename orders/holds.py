"""A manager's holds on a side of the pipeline: payments (new authorisations), captures,
receipts, emails.

During a provider's incident a manager says "stop capturing until I say so": the held
steps make no outside call, and their orders wait in their state (`orders.waits`) without
spending attempts. A hold is a row (`PipelineHold`: who, why, when placed and released),
so it survives restarts and every cluster on the database obeys it; steps read the holds
through the shared cache, which placing or releasing a hold clears once it commits.
Releasing one brings every order it held forward at once, oldest first, and writes the
release into each order's history as the manager's act.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from orders import history
from orders.flow import steps_held_by
from orders.models import HoldSide, Order, PipelineHold, ScheduledRetry

logger = logging.getLogger(__name__)

CACHE_KEY = "pipeline-holds"
# The longest a process may read a hold stale if the cache lost the clearing (a restart of Redis).
CACHE_SECONDS = 60
HELD_PREFIX = "held: "


class HoldRefused(Exception):
    """The hold cannot be placed or released as asked; the message says why, for the manager."""


@dataclass(frozen=True)
class HoldOn:
    """A hold that is on, as the steps read it."""

    side: str
    reason: str
    placed_by: str
    placed_at: datetime

    @property
    def why(self) -> str:
        """What the back office shows on a held order."""
        return f"{HELD_PREFIX}{self.reason}"


def holds_on() -> dict[str, HoldOn]:
    """The holds on now, by side (read through the shared cache; from the database alone
    while the cache cannot be reached, since a manager's hold must hold even then)."""
    try:
        holds = cache.get(CACHE_KEY)
    except Exception as error:  # the cache backend's own errors differ by backend
        logger.warning("holds read from the database, their cache is unavailable: %s", error)
        return _holds_in_database()
    return holds_from_cache(holds)


def holds_from_cache(holds: dict[str, HoldOn] | None) -> dict[str, HoldOn]:
    """`holds_on` for a caller that read the cache's entry (CACHE_KEY) itself, with other
    entries in the same round trip; None when it was not there."""
    if holds is None:
        holds = _holds_in_database()
        try:
            cache.set(CACHE_KEY, holds, timeout=CACHE_SECONDS)
        except Exception as error:
            logger.warning("holds not cached, the cache is unavailable: %s", error)
    return holds


def _holds_in_database() -> dict[str, HoldOn]:
    return {
        hold.side: HoldOn(hold.side, hold.reason, hold.placed_by, hold.placed_at)
        for hold in PipelineHold.objects.filter(released_at__isnull=True)
    }


def _forget_cached_holds() -> None:
    transaction.on_commit(lambda: cache.delete(CACHE_KEY))


def _required(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise HoldRefused("Give a reason: it is recorded with the hold and shown on every order it holds.")
    return reason


def place_hold(*, side: str, reason: str, manager: str) -> PipelineHold:
    """Hold one side of the pipeline from now until a manager releases it."""
    if side not in HoldSide.values:
        raise HoldRefused(f"There is no side of the pipeline called {side!r}.")
    reason = _required(reason)
    try:
        with transaction.atomic():
            hold = PipelineHold.objects.create(side=side, reason=reason, placed_by=manager, placed_at=timezone.now())
            _forget_cached_holds()
    except IntegrityError:
        on = PipelineHold.objects.filter(side=side, released_at__isnull=True).first()
        since = f" by {on.placed_by} since {timezone.localtime(on.placed_at):%Y-%m-%d %H:%M}" if on else ""
        raise HoldRefused(f"{HoldSide(side).label} are held already{since}.") from None
    logger.warning("%s held by %s: %s", side, manager, reason)
    return hold


def release_hold(hold: PipelineHold, *, reason: str, manager: str) -> int:
    """Release a hold: every order it held goes on at once, oldest first (the pipeline tick
    queues them within a second or so). Returns how many orders it held."""
    reason = _required(reason)
    now = timezone.now()
    with transaction.atomic():
        if not PipelineHold.objects.filter(pk=hold.pk, released_at__isnull=True).update(
            released_at=now, released_by=manager, release_reason=reason
        ):
            raise HoldRefused("This hold was released already.")
        _forget_cached_holds()
        waiting = ScheduledRetry.objects.filter(step__in=steps_held_by(hold.side), waiting_for__startswith=HELD_PREFIX)
        # The orders first, by key, then their retries: the order a step's wait locks them
        # in (`waits.wait_for`), so a release never deadlocks with a step looking again.
        held = waiting.values("order_id")
        orders = {o.pk: o for o in Order.objects.select_for_update(of=("self",)).filter(pk__in=held).order_by("pk")}
        rows = list(waiting.filter(order_id__in=orders).order_by("order_id").values_list("order_id", "step"))
        waiting.filter(order_id__in=orders).update(due_at=now, waiting_for="")
        actor = history.manager(manager)
        for order_id, step in rows:
            history.hold_released(orders[order_id], step=step, actor=actor, side=hold.get_side_display(), reason=reason)
    hold.refresh_from_db()
    logger.warning("%s released by %s (%d orders go on): %s", hold.side, manager, len(rows), reason)
    return len(rows)
