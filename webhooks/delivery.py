"""Delivery of the outbox, from the task cluster only (docs/webhooks.md).

Every cluster's broker runs `run_webhook_tick` with the pipeline tick (config/broker.py): it
queues one `deliver_webhooks` task per endpoint with events due. That task claims the endpoint
(a lease, so one worker sends to it at a time and a killed worker's claim lapses) and sends
its pending deliveries oldest first, one at a time, so the events of an order arrive in the
order they happened. The first failure stops it: the endpoint backs off (twice as long after
each failure in a row) with its events waiting in order behind it, so a dead receiver costs
a worker one timeout per backoff, and orders never wait for it. An event still undelivered
WEBHOOK_RETRY_SECONDS after it happened is given up on (a manager may redeliver it); an
endpoint failing for WEBHOOK_DISABLE_AFTER_SECONDS is disabled and the managers are emailed.
A worker killed between the POST and its record sends that event again, with the same
`webhook-id`, which receivers dedupe on.
"""

import json
import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db.models import Q
from django.utils import timezone

from framework import metrics
from framework.alarm_recipients import alarm_recipients
from framework.queue import Task, enqueue
from webhooks import sending, signing
from webhooks.models import TEST_EVENT, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from webhooks.outbox import OUTBOX, write_event

logger = logging.getLogger(__name__)

Pending = WebhookDelivery.State.PENDING


def _free(now: datetime, field: str) -> Q:
    return Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__lt": now})


def endpoints_due(now: datetime):
    """Active endpoints with pending deliveries, out of backoff, nobody sending to them or queued to."""
    pending = WebhookDelivery.objects.filter(state=Pending).values("endpoint_id")
    return WebhookEndpoint.objects.filter(
        _free(now, "next_attempt_at") & _free(now, "claimed_until") & _free(now, "nudged_until"),
        active=True,
        pk__in=pending,
    )


def run_webhook_tick(now: datetime | None = None) -> int:
    """Queue a delivery task for every endpoint due; returns how many were queued."""
    now = now or timezone.now()
    queued = 0
    for endpoint_id in endpoints_due(now).values_list("pk", flat=True):
        lease = now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
        # Compare-and-set: of several clusters ticking at once, one queues it.
        if WebhookEndpoint.objects.filter(_free(now, "nudged_until"), pk=endpoint_id).update(nudged_until=lease):
            enqueue(Task.DELIVER_WEBHOOKS, endpoint_id, group="webhooks")
            queued += 1
    return queued


def deliver_to_endpoint(endpoint_id: int) -> int:
    """Send the endpoint's pending deliveries in order until none is left, one fails, or
    WEBHOOK_TASK_SECONDS are spent; returns how many were delivered. Does nothing when another
    worker holds the endpoint or it is backing off."""
    now = timezone.now()
    claimed = WebhookEndpoint.objects.filter(
        _free(now, "claimed_until") & _free(now, "next_attempt_at"), pk=endpoint_id, active=True
    ).update(claimed_until=now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS))
    if not claimed:
        return 0
    delivered = 0
    deadline = time.monotonic() + settings.WEBHOOK_TASK_SECONDS
    try:
        while time.monotonic() < deadline:
            endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
            if not endpoint.active:
                break
            _give_up_old(endpoint)
            delivery = (
                WebhookDelivery.objects.filter(endpoint=endpoint, state=Pending)
                .select_related("event")
                .order_by("event_id")
                .first()
            )
            if delivery is None:
                break
            lease = timezone.now() + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
            WebhookEndpoint.objects.filter(pk=endpoint_id).update(claimed_until=lease)
            if not send_delivery(endpoint, delivery):
                break
            delivered += 1
    finally:
        WebhookEndpoint.objects.filter(pk=endpoint_id).update(claimed_until=None, nudged_until=None)
    return delivered


def send_delivery(endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> bool:
    """One attempt at one delivery, recorded; the endpoint backs off when it fails. Returns
    whether it was delivered."""
    body = json.dumps(delivery.event.payload, separators=(",", ":")).encode()
    headers = signing.signed_headers(endpoint.secret, delivery.event.message_id, int(time.time()), body)
    answer = sending.post(endpoint.url, body, headers)
    now = timezone.now()
    WebhookAttempt.objects.create(
        delivery=delivery,
        status=answer.status,
        error=answer.error[:500],
        answer=answer.excerpt[:500],
        duration_ms=answer.duration_ms,
    )
    fields = {"attempts": delivery.attempts + 1, "last_attempt_at": now, "last_status": answer.status}
    if answer.delivered:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            state=WebhookDelivery.State.DELIVERED, delivered_at=now, last_error="", **fields
        )
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            consecutive_failures=0, failing_since=None, next_attempt_at=None
        )
        metrics.WEBHOOKS_SENT.labels("delivered").inc()
        return True
    error = answer.error or f"HTTP {answer.status}: {answer.excerpt[:200]}"
    WebhookDelivery.objects.filter(pk=delivery.pk).update(last_error=error[:500], **fields)
    metrics.WEBHOOKS_SENT.labels("refused" if answer.refused else "failed").inc()
    _back_off(endpoint, now, error)
    return False


def backoff_seconds(failures: int) -> float:
    """How long an endpoint waits after `failures` failures in a row."""
    return min(settings.WEBHOOK_BACKOFF_SECONDS * 2 ** max(failures - 1, 0), settings.WEBHOOK_BACKOFF_MAX_SECONDS)


def _back_off(endpoint: WebhookEndpoint, now: datetime, error: str) -> None:
    failures = endpoint.consecutive_failures + 1
    failing_since = endpoint.failing_since or now
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        consecutive_failures=failures,
        failing_since=failing_since,
        next_attempt_at=now + timedelta(seconds=backoff_seconds(failures)),
    )
    logger.warning("webhook endpoint %s failed (%s in a row): %s", endpoint.pk, failures, error)
    if now - failing_since >= timedelta(seconds=settings.WEBHOOK_DISABLE_AFTER_SECONDS):
        disable_endpoint(endpoint, f"Failing since {failing_since:%Y-%m-%d %H:%M %Z}: {error}"[:300])


def _give_up_old(endpoint: WebhookEndpoint) -> None:
    """Pending deliveries of events older than WEBHOOK_RETRY_SECONDS fail for good."""
    too_old = timezone.now() - timedelta(seconds=settings.WEBHOOK_RETRY_SECONDS)
    gave_up = WebhookDelivery.objects.filter(endpoint=endpoint, state=Pending, event__created_at__lt=too_old).update(
        state=WebhookDelivery.State.FAILED
    )
    if gave_up:
        metrics.WEBHOOKS_SENT.labels("gave_up").inc(gave_up)
        logger.error("webhook endpoint %s: gave up on %s events older than a day", endpoint.pk, gave_up)


def disable_endpoint(endpoint: WebhookEndpoint, reason: str) -> None:
    """Stop sending to an endpoint that keeps failing, and email the managers (the alarms' recipients)."""
    if not WebhookEndpoint.objects.filter(pk=endpoint.pk, active=True).update(active=False, disabled_reason=reason):
        return
    OUTBOX.subscriptions.forget()
    logger.error("webhook endpoint %s disabled: %s", endpoint.pk, reason)
    recipients = alarm_recipients()
    if not recipients:
        return
    subject = f"[{settings.SHOP_NAME}] Webhook endpoint disabled: {endpoint}"[:200]
    body = (
        f"The webhook endpoint {endpoint.url} ({endpoint.description or 'no description'}) was disabled.\n\n"
        f"{reason}\n\nIts events wait undelivered; turn it on again in the admin once it answers, "
        "and redeliver what it missed from its delivery log."
    )
    try:
        EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, recipients).send()
    except Exception:
        logger.exception("the email about disabling webhook endpoint %s failed", endpoint.pk)


def redeliver(deliveries) -> int:
    """Send these deliveries again (a manager's act): pending again, their endpoint out of
    backoff now. Returns how many."""
    count = deliveries.exclude(state=Pending).update(state=Pending)
    endpoint_ids = set(deliveries.values_list("endpoint_id", flat=True))
    WebhookEndpoint.objects.filter(pk__in=endpoint_ids).update(next_attempt_at=None)
    return count


def send_test_event(endpoint: WebhookEndpoint) -> WebhookEvent:
    """Queue a `webhook.test` event to this one endpoint (the tick sends it)."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(next_attempt_at=None)
    return write_event(
        TEST_EVENT,
        key=f"test:{endpoint.pk}",
        data={"endpoint": endpoint.pk, "message": "A test event from the admin."},
        endpoint_ids=[endpoint.pk],
    )
