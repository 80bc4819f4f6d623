from django.db import models
from django.db.models import Q


class Payment(models.Model):
    """The money side of one order: one row per order, following the provider's intent."""

    class Status(models.TextChoices):
        PENDING = "pending"
        REQUIRES_ACTION = "requires_action"
        AUTHORIZED = "authorized"
        CAPTURED = "captured"
        DECLINED = "declined"
        VOIDED = "voided"
        REFUNDED = "refunded"
        PARTIALLY_REFUNDED = "partially_refunded"
        FAILED = "failed"

    order = models.OneToOneField("orders.Order", on_delete=models.PROTECT, related_name="payment")
    provider = models.CharField(max_length=20)
    provider_reference = models.CharField(max_length=255, blank=True, db_index=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    amount_refunded = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    decline_code = models.CharField(max_length=60, blank=True)
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    client_secret = models.CharField(
        max_length=255, blank=True, help_text="Lets the shopper's page authenticate (3-D Secure) while it waits."
    )
    authorization_expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the provider's hold lapses and the amount can no longer be captured "
        "(Stripe's capture_before; the simulated gateway's window).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # The alarm on authorisations about to lapse reads the oldest of one status.
        indexes = [models.Index(fields=["status", "updated_at"], name="payment_status_updated")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="payment_amount_not_negative"),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0) & Q(amount_refunded__lte=models.F("amount")),
                name="payment_refund_within_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.provider_reference or '-'} {self.status}"


# Statuses in which a payment may still hold the shopper's money: a failed or cancelled
# order with one of them still needs its compensation.
MONEY_HELD_STATUSES = (
    Payment.Status.PENDING,
    Payment.Status.REQUIRES_ACTION,
    Payment.Status.AUTHORIZED,
    Payment.Status.CAPTURED,
    Payment.Status.PARTIALLY_REFUNDED,
)


class SimulatedPaymentIntent(models.Model):
    """The simulated gateway's own book, in the database so every process sees one truth.

    Keyed by the idempotency key like Stripe's requests, so a replayed call returns the
    intent it created the first time instead of charging again.
    """

    idempotency_key = models.CharField(max_length=255, unique=True)
    reference = models.CharField(max_length=40, unique=True)
    payment_method = models.CharField(max_length=100)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=30)
    amount_refunded_minor = models.BigIntegerField(default=0)
    refund_keys = models.JSONField(default=list)
    calls = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.reference} {self.status}"


class RefundReason(models.Model):
    """Why money went back, from a list managers keep in the admin (seeded by a migration).

    Every refund names one, so refunds can be counted by reason; `show_to_shopper` says
    whether the refund email and the credit note print it (not "fraud", say).
    """

    code = models.SlugField(max_length=40, primary_key=True)
    label = models.CharField(max_length=100)
    show_to_shopper = models.BooleanField(default=True)
    active = models.BooleanField(default=True, help_text="Offered on the refund form.")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "label"]

    def __str__(self) -> str:
        return self.label


# What a refund made outside the back office (Stripe's dashboard) is filed under when the
# provider gives no reason we know.
OTHER_REASON = "other"


class Refund(models.Model):
    """A manager's refund of part or all of a captured payment.

    Its id is part of the provider's idempotency key, so resending one refund (a retry, a
    second worker, the reconciler) never gives the money back twice, while two refunds
    of the same amount stay two refunds.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="refunds")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=200, blank=True, help_text="The manager's note, kept in the history.")
    reason_code = models.ForeignKey(
        RefundReason, on_delete=models.PROTECT, related_name="refunds", db_column="reason_code"
    )
    requested_by = models.CharField(max_length=150)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive")]

    def __str__(self) -> str:
        return f"refund {self.amount} {self.currency} of {self.order_id}: {self.status}"


class StripeEvent(models.Model):
    """A webhook event from Stripe, stored once: a second delivery of the same id changes nothing."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["processed_at", "received_at"], name="stripe_event_pending")]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"


class ReconcilerProgress(models.Model):
    """How far the reconciler has compared: every settled order changed up to
    (`order_changed_at`, `order_id`), in that order. The next run starts after it."""

    name = models.CharField(max_length=40, primary_key=True)
    order_changed_at = models.DateTimeField()
    order_id = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.name} through order #{self.order_id} changed at {self.order_changed_at}"
