"""The product audits its own invariants (DESIGN.md): stock, money, receipts, emails.

Each check reads the books and returns what it found wrong, never changes anything. The
scheduled audit looks at the orders of a recent window (`AUDIT_WINDOW_HOURS`) so that it
stays cheap on a large table; `manage.py audit_invariants --all` reads every order. Stock is
always checked whole: it is one row per product. Every run is recorded (`AuditRun`): the
invariants alarm reads the latest instead of running the checks again each minute.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone

from inventory.models import Stock, StockMovement
from inventory.services import orders_with_stock_deducted
from orders.models import FAILURE_ENDS, AuditRun, Notification, Order, OrderLine
from orders.models import OrderState as S
from payments.models import MONEY_HELD_STATUSES, Payment

# The statuses of a payment whose money was taken (and possibly given back in part or whole later).
CAPTURED_STATUSES = (Payment.Status.CAPTURED, Payment.Status.PARTIALLY_REFUNDED, Payment.Status.REFUNDED)
# Orders in these states hold a reservation until their stock is deducted.
RESERVING_STATES = (S.VALIDATED, S.PAID)
MAX_LISTED = 50  # violations listed per check; the count is always whole
KEEP_RUNS_DAYS = 30


@dataclass
class CheckResult:
    name: str
    violations: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, finding: str) -> None:
        self.violations += 1
        if len(self.examples) < MAX_LISTED:
            self.examples.append(finding)


@dataclass
class AuditReport:
    started_at: datetime
    window_hours: int | None  # None: every order
    orders_read: int  # the orders of the window (every order with no window)
    checks: list[CheckResult]

    @property
    def violations(self) -> int:
        return sum(check.violations for check in self.checks)

    @property
    def ok(self) -> bool:
        return self.violations == 0

    def as_json(self) -> dict:
        return {
            "ok": self.ok,
            "violations": self.violations,
            "started_at": self.started_at.isoformat(),
            "window_hours": self.window_hours,
            "orders_read": self.orders_read,
            "checks": [asdict(check) for check in self.checks],
        }


def check_ledger_sums_to_on_hand(orders: QuerySet[Order]) -> CheckResult:
    """Every product's ledger lines add up to its stock on hand."""
    result = CheckResult("ledger sums to on hand")
    ledger = dict(StockMovement.objects.order_by().values_list("product_id").annotate(total=Sum("quantity")))
    for stock in Stock.objects.select_related("product"):
        if ledger.get(stock.product_id, 0) != stock.on_hand:
            result.add(f"{stock.product.sku}: ledger {ledger.get(stock.product_id, 0)}, on hand {stock.on_hand}")
    return result


def check_stock_within_bounds(orders: QuerySet[Order]) -> CheckResult:
    """No stock below zero, never more reserved than on hand."""
    result = CheckResult("no negative stock")
    for stock in Stock.objects.select_related("product").filter(
        Q(on_hand__lt=0) | Q(reserved__lt=0) | Q(reserved__gt=F("on_hand"))
    ):
        result.add(f"{stock.product.sku}: on hand {stock.on_hand}, reserved {stock.reserved}")
    return result


def check_reserved_matches_open_orders(orders: QuerySet[Order]) -> CheckResult:
    """Each product's reserved units are exactly the lines of open orders not yet deducted."""
    result = CheckResult("reserved equals the reservations of open orders")
    deducted = orders_with_stock_deducted()
    held = defaultdict(
        int,
        OrderLine.objects.filter(order__state__in=RESERVING_STATES)
        .exclude(order_id__in=deducted)
        .order_by()
        .values_list("product_id")
        .annotate(units=Sum("quantity")),
    )
    for stock in Stock.objects.select_related("product"):
        if stock.reserved != held[stock.product_id]:
            result.add(f"{stock.product.sku}: reserved {stock.reserved}, open orders hold {held[stock.product_id]}")
    return result


def check_completed_orders_are_paid_and_receipted(orders: QuerySet[Order]) -> CheckResult:
    """Every completed order has its payment captured and its receipt stored."""
    result = CheckResult("every completed order has one captured payment and one receipt")
    completed = orders.filter(state=S.COMPLETED)
    unpaid = completed.exclude(payment__status__in=CAPTURED_STATUSES).values_list("reference", flat=True)
    for reference in unpaid.iterator():
        result.add(f"{reference}: completed without a captured payment")
    unreceipted = completed.exclude(receipt__stored_at__isnull=False).values_list("reference", flat=True)
    for reference in unreceipted.iterator():
        result.add(f"{reference}: completed without a stored receipt")
    return result


def check_failed_orders_hold_no_money(orders: QuerySet[Order]) -> CheckResult:
    """No failed or cancelled order keeps a hold or a charge once compensation had time to run."""
    result = CheckResult("no failed or cancelled order holds money")
    settled = timezone.now() - timedelta(seconds=settings.ORDER_STUCK_AFTER_SECONDS)
    holding = orders.filter(
        state__in=FAILURE_ENDS, updated_at__lt=settled, payment__status__in=MONEY_HELD_STATUSES
    ).values_list("reference", "state", "payment__status")
    for reference, state, status in holding.iterator():
        result.add(f"{reference}: {state} with its payment {status}")
    return result


def check_one_confirmation_email(orders: QuerySet[Order]) -> CheckResult:
    """At most one confirmation email per order: an UNCERTAIN one (it may have arrived) counts as sent."""
    result = CheckResult("at most one confirmation email per order")
    may_have_gone = [Notification.Status.SENT, Notification.Status.UNCERTAIN]
    doubled = (
        Notification.objects.filter(order__in=orders, kind=Notification.Kind.CONFIRMATION, status__in=may_have_gone)
        .order_by()
        .values_list("order__reference")
        .annotate(sent=Count("id"))
        .filter(sent__gt=1)
    )
    for reference, sent in doubled:
        result.add(f"{reference}: {sent} confirmation emails sent or possibly sent")
    return result


CHECKS: tuple[Callable[[QuerySet[Order]], CheckResult], ...] = (
    check_ledger_sums_to_on_hand,
    check_stock_within_bounds,
    check_reserved_matches_open_orders,
    check_completed_orders_are_paid_and_receipted,
    check_failed_orders_hold_no_money,
    check_one_confirmation_email,
)


def audit_invariants(*, window_hours: int | None = None) -> AuditReport:
    """Run every check over the orders touched in the last `window_hours` (every order when None)."""
    started = timezone.now()
    orders = Order.objects.all()
    if window_hours is not None:
        orders = orders.filter(updated_at__gte=started - timedelta(hours=window_hours))
    return AuditReport(
        started_at=started,
        window_hours=window_hours,
        orders_read=orders.count(),
        checks=[check(orders) for check in CHECKS],
    )


def run_audit(*, window_hours: int | None = None) -> AuditReport:
    """Audit the invariants and record the run (older runs than KEEP_RUNS_DAYS are dropped)."""
    report = audit_invariants(window_hours=window_hours)
    AuditRun.objects.create(
        started_at=report.started_at, window_hours=window_hours, violations=report.violations, report=report.as_json()
    )
    AuditRun.objects.filter(started_at__lt=report.started_at - timedelta(days=KEEP_RUNS_DAYS)).delete()
    return report


def latest_audit_run() -> AuditRun | None:
    """The most recent recorded audit, scheduled or run by hand."""
    return AuditRun.objects.order_by("-started_at").first()
