"""Outbound webhooks: the endpoints partners gave us, the outbox of facts to tell them, each
delivery of a fact to an endpoint, and every attempt at it (docs/webhooks.md)."""

import base64
import secrets
import uuid

from django.db import models

# The event types an endpoint may subscribe to (docs/webhooks.md, the catalogue).
EVENT_TYPES: dict[str, str] = {
    "order.placed": "An order was accepted: its stock is reserved",
    "order.paid": "An order's payment was authorised",
    "order.completed": "An order was completed: stock deducted, receipt stored, shopper told",
    "order.failed": "An order failed (payment declined, or an error after retries; compensated)",
    "order.cancelled": "A manager cancelled an order (payment voided or refunded, stock released)",
    "refund.created": "Money went back to the shopper (a refund here, or one made at the provider)",
    "stock.low": "A product's available units fell to or under its low-stock threshold",
}
TEST_EVENT = "webhook.test"
PAYLOAD_VERSION = 1


def new_secret() -> str:
    """A signing secret in the Standard Webhooks shape: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


class WebhookEndpoint(models.Model):
    url = models.URLField(
        max_length=500, help_text="Where the events are POSTed; a public address (https recommended)."
    )
    description = models.CharField(max_length=200, blank=True, help_text="Whose it is: the warehouse, the ERP...")
    secret = models.CharField(max_length=80, default=new_secret, editable=False)
    event_types = models.JSONField(default=list, help_text="The event types this endpoint receives.")
    active = models.BooleanField(default=True, help_text="Off: nothing is sent; its events wait until it is on again.")
    disabled_reason = models.CharField(max_length=300, blank=True)
    # Per-endpoint backoff: a failing receiver waits until `next_attempt_at`, its events in order behind it.
    consecutive_failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # The worker delivering to it holds it until then (a killed one's claim lapses);
    # `nudged_until`: a delivery task is queued for it, so the tick queues no second one.
    claimed_until = models.DateTimeField(null=True, blank=True)
    nudged_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        verbose_name = "webhook endpoint"
        permissions = [("manage_webhooks", "Manage webhook endpoints, redeliver and test their events")]

    def __str__(self) -> str:
        return self.description or self.url


class WebhookEvent(models.Model):
    """One fact in the outbox, written in the transaction that made it true. Its primary key's
    order is the order events are delivered in."""

    message_id = models.CharField(max_length=40, unique=True, default=new_message_id, editable=False)
    type = models.CharField(max_length=40)
    key = models.CharField(max_length=80, help_text="What its order is kept by: the order's reference.")
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-pk"]
        verbose_name = "webhook event"

    def __str__(self) -> str:
        return f"{self.type} {self.key}"


class WebhookDelivery(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed", "Failed (gave up)"

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status = models.PositiveIntegerField(null=True, blank=True, help_text="The receiver's last HTTP status.")
    last_error = models.CharField(max_length=500, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-pk"]
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once")]
        indexes = [
            models.Index(fields=["endpoint", "event"], condition=models.Q(state="pending"), name="webhook_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.endpoint}"


class WebhookAttempt(models.Model):
    """One POST of a delivery, and what the receiver answered."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(auto_now_add=True)
    status = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    answer = models.CharField(max_length=500, blank=True, help_text="The first 500 characters of the answer.")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"{self.status or self.error} at {self.at:%Y-%m-%d %H:%M:%S}"
