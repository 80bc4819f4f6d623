"""Alarm rules as data, and their evaluation: what is firing, who is told, once.

`RULES` is the table: each rule names itself and has a check that reads the facts (the
selectors) against thresholds from settings (config/settings/monitoring.py) and returns
a `Finding` while the rule fires, None while all is well. `evaluate_alarms` runs on the
cluster's schedule (framework/schedules.py) and keeps one `AlarmFiring` row per stretch of
firing: the first evaluation that finds a rule firing opens one and emails the recipients
(`alarm_recipients`: superusers, the roles that act on orders, ALARM_EMAILS; and publishes
to SNS when NOTIFY_SNS_TOPIC_ARN is set), the first that finds it fine again closes it and
sends the all-clear to those it told. The firing records who it told: someone who becomes a
recipient while it still fires is told at the next evaluation, once; with nobody to tell it
says so, and tells the first recipient who appears. A rule emailed about within
ALARM_COOLDOWN_SECONDS is not emailed again, so a flapping alarm wakes nobody twice; its
firing is recorded, and emailed if it still fires once the cooldown is over. A rule about
given orders flags each of them for a manager, once per finding.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone

from framework.alarm_recipients import alarm_recipients
from framework.breakers import BreakerState, read_breakers
from framework.queue import queue_backlog, running_clusters
from inventory.selectors import products_low_on_stock
from monitoring import selectors
from monitoring.models import AlarmFiring
from orders import history, sns
from orders.audit import latest_audit_run
from orders.holds import HELD_PREFIX
from orders.models import ActorKind, HoldSide, Order, OrderState, PipelineHold, ScheduledRetry
from orders.selectors import OPEN_STATES, open_orders_by_state, open_orders_untouched_since
from payments.authorizations import lapsing_within
from webhooks.selectors import endpoints_failing_since

logger = logging.getLogger(__name__)

ALARM = history.Actor(ActorKind.ALARM)
# Orders an alarm lists (and flags) at most, per evaluation.
MAX_ORDERS = 50


@dataclass(frozen=True)
class Finding:
    """What a firing rule found: a line for the email's subject, details for its body."""

    summary: str
    details: dict = field(default_factory=dict)
    orders: Sequence[Order] = ()  # orders to flag for a manager, each once per `finding`
    finding: str = ""


@dataclass(frozen=True)
class Rule:
    name: str  # stored on its firings: never renamed
    title: str
    check: Callable[[datetime], Finding | None]
    urgent: bool = False  # louder: "URGENT" in the subject, and no cooldown between its emails


def failure_rate(now: datetime) -> Finding | None:
    """Too many of the orders that ended in the window ended FAILED (the pipeline gave up)."""
    window = settings.ALARM_FAILURE_RATE_WINDOW_SECONDS
    ended = selectors.orders_ended_since(now - timedelta(seconds=window))
    total, failed = sum(ended.values()), ended.get(OrderState.FAILED, 0)
    if total < settings.ALARM_FAILURE_RATE_MIN_ORDERS or failed / total < settings.ALARM_FAILURE_RATE:
        return None
    return Finding(
        f"{failed} of {total} orders ended FAILED in the last {window // 60} min ({failed / total:.0%})",
        {"ended": ended, "threshold": settings.ALARM_FAILURE_RATE, "window_seconds": window},
    )


STUCK_STEP = "alarm_orders_over_time_limit"  # the step its flags carry: f"alarm_{rule.name}"


def orders_over_time_limit(now: datetime) -> Finding | None:
    """Orders untouched in a non-final state past ORDER_TIME_LIMIT_SECONDS; it keeps firing
    while an order it flagged is still open (flagging touches the order, resetting its age)."""
    limit = settings.ORDER_TIME_LIMIT_SECONDS
    over = {state: o for state, o in open_orders_by_state(now).items() if o.oldest_age_seconds > limit}
    still_open = selectors.orders_flagged_by(STUCK_STEP, now - timedelta(days=7)).filter(state__in=OPEN_STATES)
    if not over and not still_open.exists():
        return None
    stuck = list(open_orders_untouched_since(now - timedelta(seconds=limit))[:MAX_ORDERS])
    references = [o.reference for o in stuck] or list(still_open.values_list("reference", flat=True)[:MAX_ORDERS])
    ages = [f"{o.count} {state}, oldest untouched {o.oldest_age_seconds / 60:.0f} min" for state, o in over.items()]
    summary = "; ".join(ages) or f"{len(references)} flagged orders still not finished"
    return Finding(
        f"Orders over their {limit // 60} min limit: {summary}",
        {"limit_seconds": limit, "orders": references},
        orders=stuck,
        finding="over its time limit",
    )


def queue_age(now: datetime) -> Finding | None:
    backlog = queue_backlog()
    if backlog.oldest_age_seconds <= settings.ALARM_QUEUE_AGE_SECONDS:
        return None
    return Finding(
        f"The oldest of {backlog.depth} queued tasks has waited {backlog.oldest_age_seconds:.0f}s",
        {"depth": backlog.depth, "oldest_age_seconds": round(backlog.oldest_age_seconds)},
    )


def cluster_heartbeat(now: datetime) -> Finding | None:
    """Fewer clusters report a heartbeat than ALARM_MIN_CLUSTERS. Evaluated by a cluster,
    this sees a missing one only where several run: `manage.py evaluate_alarms` from cron
    (and /health/ready) see the last one go."""
    clusters = running_clusters()
    if len(clusters) >= settings.ALARM_MIN_CLUSTERS:
        return None
    return Finding(
        f"{len(clusters)} task clusters report a heartbeat, {settings.ALARM_MIN_CLUSTERS} expected",
        {"running": [c.cluster_id for c in clusters]},
    )


def webhook_failures(now: datetime) -> Finding | None:
    age = settings.ALARM_WEBHOOK_AGE_SECONDS
    stale = selectors.stale_stripe_events(now - timedelta(seconds=age))
    count = stale.count()
    if not count:
        return None
    errors = list(stale.exclude(error="").values_list("event_id", "error")[:10])
    return Finding(
        f"{count} Stripe webhook events unprocessed for over {age // 60} min",
        {"count": count, "errors": [f"{event}: {error[:200]}" for event, error in errors]},
    )


def webhook_endpoints_failing(now: datetime) -> Finding | None:
    """Partners' webhook endpoints failing for ALARM_WEBHOOK_ENDPOINT_FAILING_SECONDS, or
    switched off for failing (docs/webhooks.md): their events wait undelivered."""
    age = settings.ALARM_WEBHOOK_ENDPOINT_FAILING_SECONDS
    endpoints = list(endpoints_failing_since(now - timedelta(seconds=age))[:MAX_ORDERS])
    if not endpoints:
        return None
    return Finding(
        f"{len(endpoints)} webhook endpoint{'s' if len(endpoints) != 1 else ''} failing for over {age // 60} min "
        f"or switched off; {sum(e.waiting for e in endpoints)} events wait",
        {"endpoints": {e.url: f"{'on' if e.active else 'off'}, {e.waiting} waiting" for e in endpoints}},
    )


def authorisations_lapsing(now: datetime) -> Finding | None:
    """Card authorisations not captured that lapse within ALARM_AUTHORIZATION_EXPIRY_HOURS (the
    lapse policy acts before that: one firing means it could not settle them)."""
    hours = settings.ALARM_AUTHORIZATION_EXPIRY_HOURS
    payments = list(selectors.authorisations_lapsing(lapsing_within(now))[:MAX_ORDERS])
    if not payments:
        return None
    return Finding(
        f"{len(payments)} payments are not captured and their authorisations lapse within {hours} h",
        {"orders": [p.order.reference for p in payments]},
        orders=[p.order for p in payments],
        finding="authorisation lapses uncaptured",
    )


def low_stock(now: datetime) -> Finding | None:
    products = list(products_low_on_stock()[:MAX_ORDERS])
    if not products:
        return None
    return Finding(
        f"{len(products)} product{'s' if len(products) != 1 else ''} at or under the low-stock threshold",
        {"products": {p.sku: p.available for p in products}},
    )


def reconciler_mismatches(now: datetime) -> Finding | None:
    """Orders the reconciler flagged (our books and the provider's disagree) still waiting for a manager."""
    hours = settings.ALARM_RECONCILER_WINDOW_HOURS
    flagged = selectors.orders_flagged_by("reconcile_payments", now - timedelta(hours=hours))
    references = list(flagged.values_list("reference", flat=True)[:MAX_ORDERS])
    if not references:
        return None
    return Finding(f"{len(references)} orders disagree with the payment provider", {"orders": references})


def invariant_violations(now: datetime) -> Finding | None:
    """What the latest audit of the product's own invariants (`orders.audit`) found: the
    scheduled one (every few minutes) or one run by hand."""
    run = latest_audit_run()
    if run is None or not run.violations:
        return None
    checks = run.report["checks"]
    violations = [f"{check['name']}: {example}" for check in checks for example in check["examples"]]
    return Finding(f"{run.violations} invariant violations", {"violations": violations[:MAX_ORDERS]})


def pipeline_held(now: datetime) -> Finding | None:
    """A manager holds a side of the pipeline: it fires for as long as the hold is on."""
    on = list(PipelineHold.objects.filter(released_at__isnull=True).order_by("placed_at"))
    if not on:
        return None
    waiting = ScheduledRetry.objects.filter(waiting_for__startswith=HELD_PREFIX)
    lines = [
        f"{hold.get_side_display()} held by {hold.placed_by} since "
        f"{timezone.localtime(hold.placed_at):%Y-%m-%d %H:%M}: {hold.reason}"
        for hold in on
    ]
    return Finding("; ".join(lines), {"holds": lines, "orders_waiting": waiting.values("order").distinct().count()})


def held_captures_lapsing(now: datetime) -> Finding | None:
    """Captures are held while orders waiting for them near the end of their authorisation
    (the hold's end as payments.authorizations reads it, warned ALARM_AUTHORIZATION_EXPIRY_HOURS
    before; the lapse policy does not capture what a manager holds): release the
    hold, or the money held on those cards goes back to the shoppers with the goods still due."""
    if not PipelineHold.objects.filter(side=HoldSide.CAPTURES, released_at__isnull=True).exists():
        return None
    held = ScheduledRetry.objects.filter(step="update_inventory", waiting_for__startswith=HELD_PREFIX)
    lapsing = selectors.authorisations_lapsing(lapsing_within(now)).filter(
        order__state=OrderState.PAID, order__in=held.values("order")
    )
    payments = list(lapsing[:MAX_ORDERS])
    if not payments:
        return None
    return Finding(
        f"Captures are held and {len(payments)} authorisations lapse within "
        f"{settings.ALARM_AUTHORIZATION_EXPIRY_HOURS} h: release the hold or those payments are lost",
        {"orders": [p.order.reference for p in payments]},
        orders=[p.order for p in payments],
        finding="authorisation lapses while captures are held",
    )


def circuit_breakers(now: datetime) -> Finding | None:
    """A provider's circuit breaker is open (or half-open, waiting for its probe to succeed)."""
    broken = [reading for reading in read_breakers() if reading.state is not BreakerState.CLOSED]
    if not broken:
        return None
    words = [f"{r.provider} {r.state.replace('_', '-')} ({r.failures} of {r.calls} calls failed)" for r in broken]
    return Finding(
        f"Not answering: {', '.join(words)}; the steps that call it wait", {"breakers": [r.provider for r in broken]}
    )


RULES: tuple[Rule, ...] = (
    Rule("failure_rate", "Orders failing", failure_rate),
    Rule("orders_over_time_limit", "Orders stuck", orders_over_time_limit),
    Rule("queue_age", "Queue backing up", queue_age),
    Rule("cluster_heartbeat", "Task cluster missing", cluster_heartbeat),
    Rule("webhook_failures", "Stripe webhooks failing", webhook_failures),
    Rule("webhook_endpoints_failing", "Webhook endpoints failing", webhook_endpoints_failing),
    Rule("authorisations_lapsing", "Authorisations lapsing uncaptured", authorisations_lapsing),
    Rule("low_stock", "Stock low", low_stock),
    Rule("reconciler_mismatches", "Payments disagree with the provider", reconciler_mismatches),
    Rule("invariants", "Invariants broken", invariant_violations),
    Rule("pipeline_held", "Pipeline held by a manager", pipeline_held),
    Rule("held_captures_lapsing", "Held captures let authorisations lapse", held_captures_lapsing, urgent=True),
    Rule("circuit_breakers", "Provider not answering (circuit open)", circuit_breakers),
)
RULE_TITLES = {rule.name: rule.title for rule in RULES}


def evaluate_alarms(now: datetime | None = None) -> list[AlarmFiring]:
    """Check every rule once; open, update or close its firing; email what started or stopped.
    Returns the firings open afterwards."""
    now = now or timezone.now()
    for rule in RULES:
        try:
            finding = rule.check(now)
        except Exception as error:  # a check that cannot read its facts is itself worth waking someone for
            logger.exception("alarm rule %s could not be checked", rule.name)
            finding = Finding(f"The check itself failed: {type(error).__name__}: {error}"[:300])
        if finding:
            _record_firing(rule, finding, now)
        else:
            _record_resolved(rule, now)
    return list(AlarmFiring.objects.filter(resolved_at__isnull=True))


def _record_firing(rule: Rule, finding: Finding, now: datetime) -> None:
    firing = AlarmFiring.objects.filter(rule=rule.name, resolved_at__isnull=True).first()
    fields = {"last_seen_at": now, "summary": finding.summary[:300], "details": finding.details}
    if firing is None:
        try:
            with transaction.atomic():
                firing = AlarmFiring.objects.create(rule=rule.name, started_at=now, **fields)
        except IntegrityError:  # another evaluation opened it just now: that one tells
            return
        logger.error("alarm %s firing: %s", rule.name, finding.summary)
    else:
        AlarmFiring.objects.filter(pk=firing.pk).update(**fields)
    for order in finding.orders:
        history.flag_order(
            order,
            actor=ALARM,
            step=f"alarm_{rule.name}",
            finding=f"{finding.finding} in {order.state}",
            message=f"{rule.title}: {finding.summary}",
        )
    _tell(firing, rule, finding, now)


def _tell(firing: AlarmFiring, rule: Rule, finding: Finding, now: datetime) -> None:
    """Announce a firing once (SNS, and the email), then email whoever became a recipient
    since, each once; record who was told. A failed email records nothing: it is tried again
    at the next evaluation."""
    first = firing.notified_at is None
    if first and _in_cooldown(rule, now):
        return
    due = [address for address in alarm_recipients() if address not in firing.notified_to]
    if first:
        _publish(firing, rule, finding.summary, finding.details, event="firing")
        if not due:
            logger.error(
                "alarm %s firing and nobody to email: no superuser or member of an order role has an address, "
                "ALARM_EMAILS is empty",
                rule.name,
            )
    if due and not _email(firing, rule, finding.summary, finding.details, recipients=due, resolved=False):
        return
    if first or due:
        AlarmFiring.objects.filter(pk=firing.pk).update(
            notified_at=firing.notified_at or now, notified_to=[*firing.notified_to, *due]
        )


def _record_resolved(rule: Rule, now: datetime) -> None:
    firing = AlarmFiring.objects.filter(rule=rule.name, resolved_at__isnull=True).first()
    if firing is None or not AlarmFiring.objects.filter(pk=firing.pk, resolved_at__isnull=True).update(resolved_at=now):
        return
    logger.warning("alarm %s resolved", rule.name)
    if firing.notified_at is None:
        return  # never announced: nobody needs the all-clear
    summary = f"Resolved: {firing.summary}"
    _publish(firing, rule, summary, firing.details, event="resolved")
    # The all-clear goes to those told it fired, and only to them.
    told = firing.notified_to
    if not told or _email(firing, rule, summary, firing.details, recipients=told, resolved=True):
        AlarmFiring.objects.filter(pk=firing.pk).update(resolve_notified_at=now)


def _in_cooldown(rule: Rule, now: datetime) -> bool:
    if rule.urgent:
        return False  # money is about to be lost: every firing is told
    # A firing that reached nobody woke nobody: it starts no cooldown.
    emailed = AlarmFiring.objects.filter(rule=rule.name).exclude(notified_to=[])
    last = emailed.aggregate(last=Max("notified_at"))["last"]
    return last is not None and now - last < timedelta(seconds=settings.ALARM_COOLDOWN_SECONDS)


def _publish(firing: AlarmFiring, rule: Rule, summary: str, details: dict, *, event: str) -> None:
    """Publish the firing or its end to SNS where NOTIFY_SNS_TOPIC_ARN is set; a failure is logged."""
    if not settings.NOTIFY_SNS_TOPIC_ARN:
        return
    try:
        sns.publish_message(
            {"alarm": rule.name, "title": rule.title, "event": event, "summary": summary, "details": details},
            attributes={"alarm": rule.name, "event": event},
            group_id=f"alarm:{rule.name}",
            deduplication_id=f"alarm:{firing.pk}:{event}",
        )
    except Exception:
        logger.exception("alarm %s %s: publishing to SNS failed", rule.name, event)


def _email(
    firing: AlarmFiring, rule: Rule, summary: str, details: dict, *, recipients: list[str], resolved: bool
) -> bool:
    """Email `recipients`. False when the email failed; a failure is logged and does not stop
    the other rules."""
    event = "resolved" if resolved else "firing"
    page = settings.PUBLIC_BASE_URL + reverse("monitoring")
    body = "\n".join(
        [
            summary,
            "",
            *(f"{key}: {value}" for key, value in details.items()),
            "",
            f"Firing since {firing.started_at:%Y-%m-%d %H:%M:%S %Z}.",
            f"The monitoring page: {page}",
        ]
    )
    word = "RESOLVED" if resolved else ("URGENT" if rule.urgent else "ALARM")
    subject = f"[{settings.SHOP_NAME}] {word} {rule.title}: {summary}"[:200]
    try:
        EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, recipients).send()
    except Exception:
        logger.exception("alarm %s %s: the email to %s failed", rule.name, event, recipients)
        return False
    return True
