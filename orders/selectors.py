"""Reads of orders for the API and the back office."""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
)
from django.utils import timezone

from inventory.models import StockMovement
from orders.models import FINAL_STATES, EventKind, Order, OrderEvent, OrderState, ScheduledRetry
from payments.authorizations import hold_lapses_before_q, lapsing_within
from payments.models import Payment, Refund
from receipts.models import CreditNote, Receipt

# Named rather than "not final": a list of states reads only their ranges of the
# (state, updated_at) index, where NOT IN scans every order ever placed (400 ms at a million).
OPEN_STATES = tuple(state for state in OrderState if state not in FINAL_STATES)


def stored_credit_note(reference: str, number: str) -> CreditNote | None:
    """The stored credit note numbered `number` (CN-00000001) of the order `reference`, or None."""
    digits = number.upper().removeprefix("CN-")
    if not digits.isdigit():
        return None
    return CreditNote.objects.filter(order__reference=reference, sequence=int(digits), stored_at__isnull=False).first()


def order_for_shopper(reference: str) -> Order | None:
    """One order with everything its status page shows, in a fixed number of queries."""
    return (
        Order.objects.select_related("payment", "receipt")
        .prefetch_related(
            "lines",
            "scheduled_retries",  # a step waiting for a hold or a provider: the page says "waiting"
            Prefetch("events", queryset=OrderEvent.objects.order_by("id")),
            # The shopper sees money that went back, not a refund still being asked of the provider.
            Prefetch(
                "refunds",
                queryset=Refund.objects.filter(status=Refund.Status.SUCCEEDED)
                .select_related("reason_code", "credit_note")
                .order_by("id"),
                to_attr="refunds_made",
            ),
        )
        .filter(reference=reference)
        .first()
    )


class ReceiptUnavailable(models.TextChoices):
    """Why GET /api/orders/<reference>/receipt has no PDF to lead to (its `reason`)."""

    ORDER_NOT_FOUND = "order_not_found", "No order has this reference."
    ORDER_IN_PROGRESS = "order_in_progress", "The order is still being processed: its receipt is made once it is paid."
    NOT_YET_GENERATED = "not_yet_generated", "The order is paid and its receipt is being made: try again shortly."
    ORDER_NOT_COMPLETED = "order_not_completed", "The order ended without a sale, so it has no receipt."


def why_no_receipt(order: Order | None) -> ReceiptUnavailable | None:
    """Why this order has no stored receipt to download, or None when it has one."""
    if order is None:
        return ReceiptUnavailable.ORDER_NOT_FOUND
    receipt = getattr(order, "receipt", None)
    if receipt is not None and receipt.stored_at:
        return None
    if order.state in FINAL_STATES and order.state != OrderState.COMPLETED:
        return ReceiptUnavailable.ORDER_NOT_COMPLETED
    if order.state in (OrderState.CONFIRMED, OrderState.COMPLETED):
        return ReceiptUnavailable.NOT_YET_GENERATED
    return ReceiptUnavailable.ORDER_IN_PROGRESS


def order_with_idempotency_key(idempotency_key: str) -> Order | None:
    """The order first placed with this Idempotency-Key, if any (its unique index finds it)."""
    return Order.objects.filter(idempotency_key=idempotency_key).first()


def order_version(reference: str) -> str | None:
    """A tag that changes whenever anything the shopper's view of the order shows changes, in one
    query: every change of state, step, payment or refund writes a history event, and the
    payment and receipt rows are read besides. None for an unknown order."""
    row = (
        Order.objects.filter(reference=reference)
        .annotate(last_event=Max("events__id"))
        .values_list(
            "state",
            "updated_at",
            "last_event",
            "payment__status",
            "payment__client_secret",
            "payment__amount_refunded",
            "receipt__stored_at",
        )
        .first()
    )
    if row is None:
        return None
    return hashlib.sha256(repr(row).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class OpenOrders:
    """The orders standing in one non-final state."""

    count: int
    oldest_age_seconds: float  # since the oldest of them last changed: a stuck order shows here


def open_orders_by_state(now: datetime | None = None) -> dict[str, OpenOrders]:
    """Every non-final state with its orders' count and the age of the oldest, in one
    query on the (state, updated_at) index; states with no order are absent."""
    now = now or timezone.now()
    rows = (
        Order.objects.filter(state__in=OPEN_STATES)
        .order_by()
        .values("state")
        .annotate(count=Count("id"), oldest=Min("updated_at"))
    )
    return {row["state"]: OpenOrders(row["count"], (now - row["oldest"]).total_seconds()) for row in rows}


def open_orders_untouched_since(cutoff: datetime) -> QuerySet[Order]:
    """Orders in a non-final state that have not changed since `cutoff`, oldest first
    (the (state, updated_at) index): stuck, or merely slow."""
    return Order.objects.filter(state__in=OPEN_STATES, updated_at__lt=cutoff).order_by("updated_at")


# --- the back office: what needs a manager, and an order's whole execution ---------------


def needs_attention_q() -> Q:
    """Orders a manager should look at: flagged ones, and FAILED ones still within the redrive
    window that no manager marked handled since they last changed (`history.marked_handled`).

    Read on two indexes, however many orders there are: the flagged ones' (partial) and
    (state, updated_at)."""
    redrivable_since = timezone.now() - timedelta(days=settings.ORDER_REDRIVE_DAYS)
    not_handled = Q(attention_handled_at__isnull=True) | Q(attention_handled_at__lt=F("updated_at"))
    return Q(needs_attention=True) | (Q(state=OrderState.FAILED, updated_at__gte=redrivable_since) & not_handled)


def with_attention(orders: QuerySet[Order]) -> QuerySet[Order]:
    """`orders` with `attention` (a bool) annotated from `needs_attention_q`: the one rule the
    home page's tile, the list's filter and column and the order's page all read."""
    return orders.annotate(attention=ExpressionWrapper(needs_attention_q(), output_field=BooleanField()))


def overdue_q() -> Q:
    """Orders in progress untouched for longer than a step may take (the sweeper's limit)."""
    limit = timezone.now() - timedelta(seconds=settings.ORDER_STUCK_AFTER_SECONDS)
    return Q(state__in=OPEN_STATES, updated_at__lt=limit)


def authorization_expiring_q() -> Q:
    """Orders whose card hold lapses within ALARM_AUTHORIZATION_EXPIRY_HOURS, not captured yet (the alarm's rule)."""
    return hold_lapses_before_q(lapsing_within(timezone.now()), prefix="payment__")


# How long after an attempt failed and was to be retried its order still counts as retrying,
# when nothing of that step was recorded since: past the longest backoff (30 s) and the
# longest lease of an attempt, an order whose retry never ran is overdue, and the pipeline
# tick nudges it. Bounds the read to a window of the events' (kind, created_at) index.
RETRYING_WINDOW = timedelta(minutes=10)


def _retrying_now(*fields: str) -> QuerySet:
    """`fields` ("order_id", "step") of every step failing and being retried now: the latest
    attempt of the step, within RETRYING_WINDOW, failed and will be retried (the sale's steps
    sleep their backoff in the worker), or its retry waits as a `ScheduledRetry` row (the side
    steps), however late. Both sets are small: the read costs the same at a million orders."""
    since = timezone.now() - RETRYING_WINDOW
    later = OrderEvent.objects.filter(order_id=OuterRef("order_id"), step=OuterRef("step"), pk__gt=OuterRef("pk"))
    failing = (
        OrderEvent.objects.filter(kind=EventKind.STEP_RETRYING, created_at__gte=since)
        .exclude(Exists(later))
        .order_by()
        .values_list(*fields)
    )
    return failing.union(ScheduledRetry.objects.order_by().values_list(*fields))


def retrying_q() -> Q:
    """Orders whose current step is failing and being retried right now (`_retrying_now`)."""
    return Q(pk__in=_retrying_now("order_id"))


def retrying_by_step() -> dict[str, int]:
    """How many orders each step is retrying right now, for the metric and the monitoring page."""
    counts: dict[str, int] = {}
    for _, step in _retrying_now("order_id", "step"):
        counts[step] = counts.get(step, 0) + 1
    return counts


def with_latest_retry(orders: QuerySet[Order]) -> QuerySet[Order]:
    """`orders` with their latest failed-and-retried attempt: `retry_step`, `retry_attempt`,
    `retry_error` and `retry_due` (when the worker retries it), and `retry_row_due` (when a
    waiting `ScheduledRetry` is due: the truth for side steps, moved on when it fires).
    Four lookups per order on the (order, step) index: for a page of the list, not for counting."""
    latest = OrderEvent.objects.filter(order_id=OuterRef("pk"), kind=EventKind.STEP_RETRYING).order_by("-id")
    waiting = ScheduledRetry.objects.filter(order_id=OuterRef("pk")).order_by("due_at")
    return orders.annotate(
        retry_step=Subquery(latest.values("step")[:1]),
        retry_attempt=Subquery(latest.values("attempt")[:1]),
        retry_error=Subquery(latest.values("error")[:1]),
        retry_due=Subquery(latest.values("parameters__due_at")[:1]),
        retry_row_due=Subquery(waiting.values("due_at")[:1]),
    )


ATTENTION = {
    "needs": ("Needs attention (flagged, or FAILED and redrivable)", needs_attention_q),
    "overdue": ("Over its time limit", overdue_q),
    "authorization_expiring": ("Authorisation close to expiring", authorization_expiring_q),
    "retrying": ("Retrying now (a step failing, to be tried again)", retrying_q),
}


def attention_counts() -> dict[str, int]:
    """How many orders each attention filter finds, for the manager's home page."""
    return {name: Order.objects.filter(q()).distinct().count() for name, (_, q) in ATTENTION.items()}


def order_ledger_lines(order: Order) -> list[StockMovement]:
    """The stock ledger lines this order wrote (sale, return), oldest first: where its units went."""
    return list(StockMovement.objects.filter(order=order).select_related("product").order_by("created_at", "id"))


def order_execution(order: Order) -> dict:
    """The whole execution of an order as JSON-ready data, as Step Functions' console exports it."""
    payment = Payment.objects.filter(order=order).first()
    receipt = Receipt.objects.filter(order=order).first()

    def money(value) -> str:
        return str(value)

    return {
        "order": {
            "reference": order.reference,
            "email": order.email,
            "state": order.state,
            "currency": order.currency,
            "subtotal": money(order.subtotal),
            "tax": money(order.tax),
            "total": money(order.total),
            "payment_method": order.payment_method,
            "failure_code": order.failure_code,
            "failure_reason": order.failure_reason,
            "needs_attention": order.needs_attention,
            "redrive_count": order.redrive_count,
            "created_at": order.created_at.isoformat(),
            "updated_at": order.updated_at.isoformat(),
            "completed_at": order.completed_at.isoformat() if order.completed_at else None,
        },
        "lines": [
            {"sku": line.sku, "name": line.name, "quantity": line.quantity, "unit_price": money(line.unit_price)}
            for line in order.lines.all()
        ],
        "payment": payment
        and {
            "provider": payment.provider,
            "provider_reference": payment.provider_reference,
            "status": payment.status,
            "amount": money(payment.amount),
            "amount_refunded": money(payment.amount_refunded),
        },
        "refunds": [
            {
                "id": r.pk,
                "amount": money(r.amount),
                "status": r.status,
                "requested_by": r.requested_by,
                "reason": r.reason,
            }
            for r in Refund.objects.filter(order=order)
        ],
        "receipt": receipt
        and {"number": receipt.number, "stored_at": receipt.stored_at and receipt.stored_at.isoformat()},
        "emails": [
            {"kind": n.kind, "status": n.status, "sent_at": n.sent_at and n.sent_at.isoformat(), "error": n.error}
            for n in order.notifications.order_by("id")
        ],
        "ledger": [
            {
                "id": line.pk,
                "at": line.created_at.isoformat(),
                "sku": line.product.sku,
                "quantity": line.quantity,
                "reason": line.reason,
                "note": line.note,
            }
            for line in order_ledger_lines(order)
        ],
        "events": [
            {
                "id": e.pk,
                "at": e.created_at.isoformat(),
                "kind": e.kind,
                "step": e.step,
                "attempt": e.attempt,
                "outcome": e.outcome,
                "from_state": e.from_state,
                "to_state": e.to_state,
                "duration_ms": e.duration_ms,
                "actor_kind": e.actor_kind,
                "actor": e.actor,
                "summary": e.summary,
                "error": e.error,
                "parameters": e.parameters,
            }
            for e in order.events.order_by("id")
        ],
    }
