import secrets

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper
from django.db.models.lookups import IsNull

from framework.compiled_query import CompiledQuery, Mark
from framework.lookups import IsNotDistinctFrom


def new_reference() -> str:
    """An order reference nobody can guess: 128 random bits, URL-safe."""
    return "ord_" + secrets.token_urlsafe(16)


class OrderState(models.TextChoices):
    PENDING = "PENDING"
    VALIDATED = "VALIDATED"
    PAID = "PAID"
    CONFIRMED = "CONFIRMED"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


FINAL_STATES = frozenset(
    {
        OrderState.COMPLETED,
        OrderState.REJECTED,
        OrderState.PAYMENT_FAILED,
        OrderState.FAILED,
        OrderState.CANCELLED,
    }
)
# The ends an order reaches without a sale: any money that arrives for one goes back.
FAILURE_ENDS = FINAL_STATES - {OrderState.COMPLETED}


def unpaid_condition() -> IsNotDistinctFrom:
    """An order is unpaid, as the per-client cap's read and its two indexes write it: the read
    can use a partial index only where the two conditions match, and `IS NOT DISTINCT FROM`
    keeps every other index from answering it (framework/lookups.py)."""
    return IsNotDistinctFrom(F("state"), OrderState.VALIDATED.value)


class Order(models.Model):
    """An order and the source of truth of its pipeline: a queue message only nudges it.

    `state` is written by `orders.transitions.set_state` alone; `needs_attention` and
    `attention_handled_at` by `orders.history`.
    """

    reference = models.CharField(max_length=40, unique=True, default=new_reference, editable=False)
    email = models.EmailField()
    state = models.CharField(max_length=20, choices=OrderState.choices, default=OrderState.PENDING)
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(max_digits=14, decimal_places=2)
    tax_rate = models.DecimalField(
        max_digits=7, decimal_places=4, default=0, help_text="The shop's rate when the order was placed (0.2 = 20%)."
    )
    tax = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    total = models.DecimalField(max_digits=14, decimal_places=2)
    payment_method = models.CharField(max_length=100)
    placed_from = models.GenericIPAddressField(
        null=True, blank=True, help_text="The client's address: caps the units one client holds unpaid."
    )
    idempotency_key = models.CharField(max_length=255, null=True, blank=True, unique=True)
    request_hash = models.CharField(max_length=64)
    failure_code = models.CharField(max_length=50, blank=True)
    failure_reason = models.TextField(blank=True, help_text="Shown to the shopper.")
    needs_attention = models.BooleanField(
        default=False,
        help_text="Something failed for good (receipt, email, payment setup, a dispute): a manager should look.",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    attention_handled_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a manager last marked the order handled: a FAILED order changed after that needs a look again.",
    )
    redrive_count = models.PositiveIntegerField(
        default=0, help_text="How many times a manager redrove this order out of FAILED (docs/REDRIVE.md)."
    )
    worked_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A worker (or a queued nudge) has this order until then: the pipeline tick leaves it alone.",
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["state", "updated_at"], name="order_state_updated"),
            # Partners read orders by when they last changed, across states (partners/apis.py's cursor).
            models.Index(fields=["updated_at", "id"], name="order_updated"),
            # The unpaid orders (few at any time) by age: the reservation release pass reads
            # only these. Its condition names its own column, as the two below do, so that no
            # other read of unpaid orders can take it for a whole-index scan (see below).
            models.Index(
                fields=["created_at"],
                condition=Q(state="VALIDATED", created_at__isnull=False),
                name="order_unpaid_created",
            ),
            # The per-client cap reads a client's own unpaid orders only (reservations.check_units_held).
            # Each condition names its own column, so only the read by address can use the
            # index by address and only the read by email the one by email: on statistics
            # that still described an empty table (a new shop, a database without autovacuum)
            # the planner found the wrong one as cheap and read every unpaid order through it
            # (2,011 buffers for the read by address after 2,000 orders; 5 with its own). The
            # state is checked `IS NOT DISTINCT FROM` here and in the read, which no index's key
            # answers: with `state = 'VALIDATED'`, statistics taken while every order was paid
            # made the index on (state, updated_at) look cheaper and the cap read every unpaid
            # order through it (`unpaid_condition`).
            models.Index(
                fields=["placed_from"],
                condition=Q(unpaid_condition(), placed_from__isnull=False),
                name="order_unpaid_by_address",
            ),
            models.Index(
                Upper("email"),
                condition=Q(unpaid_condition(), IsNull(Upper("email"), False)),
                name="order_unpaid_by_email",
            ),
            # The flagged orders (few at any time): the home tile counts them without reading every order.
            models.Index(fields=["updated_at"], condition=Q(needs_attention=True), name="order_flagged"),
        ]
        # What a manager may do to an order, each granted to roles apart (docs/ROLES.md's role table).
        permissions = [
            ("cancel_order", "Can cancel an order"),
            ("refund_order", "Can refund an order"),
            ("redrive_order", "Can redrive a failed order"),
            ("retry_order_step", "Can retry the stuck step of an order"),
            ("mark_order_handled", "Can mark an order needing attention as handled"),
            ("resend_order_email", "Can resend an order's email"),
            ("regenerate_receipt", "Can regenerate a missing receipt"),
            ("download_receipt", "Can download an order's receipt"),
            ("export_orders", "Can export orders as CSV"),
            ("view_monitoring", "Can view the monitoring page"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_not_negative"),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="+")
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=12, decimal_places=2, help_text="Captured at order time.")
    line_total = models.DecimalField(max_digits=14, decimal_places=2)
    units_left = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="For a line the order was refused for (out of stock): the units that were left. Empty otherwise.",
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_line_quantity_positive"),
            models.UniqueConstraint(fields=["order", "product"], name="order_line_one_per_product"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"


class EventKind(models.TextChoices):
    """What an order's history event records; `orders.history` has one writer per kind."""

    STATE_CHANGED = "state_changed", "State changed"
    STEP_SUCCEEDED = "step_succeeded", "Step succeeded"
    STEP_RETRYING = "step_retrying", "Step will be retried"
    STEP_FAILED = "step_failed", "Step failed"
    STEP_WAITING = "step_waiting", "Step waits"
    FLAGGED = "flagged", "Flagged for attention"
    REFUND_REQUESTED = "refund_requested", "Refund requested"
    REFUND_SUCCEEDED = "refund_succeeded", "Refund succeeded"
    REFUND_REFUSED = "refund_refused", "Refund refused"
    REFUND_RECORDED = "refund_recorded", "Refund recorded from the provider"
    REDRIVEN = "redriven", "Redriven by a manager"
    STEP_RETRY_REQUESTED = "step_retry_requested", "Step retry requested"
    EMAIL_RESENT = "email_resent", "Email resent"
    EMAIL_UNCERTAIN = "email_uncertain", "Email may not have arrived"
    RECEIPT_REGENERATED = "receipt_regenerated", "Receipt regenerated"
    STOCK_RETURNED = "stock_returned", "Units returned to stock"
    NOTE_ADDED = "note_added", "Internal note"
    MARKED_HANDLED = "marked_handled", "Marked handled by a manager"
    STEP_HELD = "step_held", "Step held by a manager"
    HOLD_RELEASED = "hold_released", "Hold released by a manager"


class ActorKind(models.TextChoices):
    """Who wrote a history event."""

    PIPELINE = "pipeline"
    SHOPPER = "shopper"
    MANAGER = "manager"
    WEBHOOK = "webhook"
    SWEEPER = "sweeper"
    RECONCILER = "reconciler"
    ALARM = "alarm"


# How each kind reads in the back office, from its structured parameters.
EVENT_SUMMARIES: dict[str, str] = {
    EventKind.STATE_CHANGED: "{from_state} -> {to_state}",
    EventKind.STEP_SUCCEEDED: "{detail}",
    EventKind.STEP_WAITING: "{why}",
    EventKind.FLAGGED: "{message}",
    EventKind.REFUND_REQUESTED: "Refund #{refund} of {amount} {currency} requested by {requested_by}: {reason}",
    EventKind.REFUND_SUCCEEDED: "Refunded {amount} {currency} (refund #{refund}).",
    EventKind.REFUND_REFUSED: "Refund #{refund} refused.",
    EventKind.REFUND_RECORDED: "The provider reports {refunded} {currency} refunded in total.",
    EventKind.REDRIVEN: "Redrive #{redrive} from {failed_step}: {plan} Reason: {reason}",
    EventKind.STEP_RETRY_REQUESTED: "Retry of {retried_step} requested. Reason: {reason}",
    EventKind.EMAIL_RESENT: "The {email} email was sent again. Reason: {reason}",
    EventKind.EMAIL_UNCERTAIN: "{message}",
    EventKind.RECEIPT_REGENERATED: "{detail} Reason: {reason}",
    EventKind.STOCK_RETURNED: "Returned to stock: {units}. Reason: {reason}",
    EventKind.NOTE_ADDED: "{note}",
    EventKind.MARKED_HANDLED: "Marked handled ({was}): {note}",
    EventKind.STEP_HELD: "{why}",
    EventKind.HOLD_RELEASED: "The hold on {side} was released: {reason}",
}


class OrderEvent(models.Model):
    """The execution history: one row per step attempt, state change, finding or manager's act.

    Written by `orders.history` alone. `error` holds what went wrong, and only that;
    everything else an event knows is in `parameters`, by kind.
    """

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded"
        RETRYING = "retrying"
        FAILED = "failed"
        SKIPPED = "skipped"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=30, choices=EventKind.choices)
    step = models.CharField(max_length=40)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    attempt = models.PositiveIntegerField(default=1)
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    parameters = models.JSONField(default=dict, blank=True)
    actor_kind = models.CharField(max_length=20, choices=ActorKind.choices, default=ActorKind.PIPELINE)
    actor = models.CharField(max_length=150, blank=True, help_text="The staff member behind a manager's action.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["order", "step"]),
            # The monitoring page and the alarms read windows of recent events of some kinds.
            models.Index(fields=["kind", "created_at"], name="order_event_kind_created"),
        ]

    def __str__(self) -> str:
        return f"{self.step} #{self.attempt}: {self.outcome}"

    @property
    def summary(self) -> str:
        """The event in a line, as the back office shows it: its kind's words, else its error."""
        template = EVENT_SUMMARIES.get(self.kind)
        if template is None:
            return self.error
        try:
            text = template.format(from_state=self.from_state, to_state=self.to_state, **self.parameters)
        except KeyError:  # a row written before kinds existed: its text was kept as a note
            return self.parameters.get("note") or self.error
        return " ".join(part for part in (text.strip(), self.error) if part)


def lock_order(order_id: int) -> Order:
    """The order row, locked until the caller's transaction ends."""
    return Order.objects.select_for_update(of=("self",)).get(pk=order_id)


# Built by the ORM once per process: a step that changed nothing of the order's row needs its
# lock and its state, not the row read into an instance (about 1,400 Python calls).
_LOCKED_STATE = CompiledQuery(
    lambda order_id: Order.objects.select_for_update(of=("self",)).filter(pk=order_id).values_list("state"),
    order_id=Mark(-7_315_911),
)


def lock_state(order_id: int) -> str | None:
    """The order's state, its row locked until the caller's transaction ends (None: no row)."""
    rows = _LOCKED_STATE.rows(order_id=order_id)
    return rows[0][0] if rows else None


def relock(order: Order) -> Order:
    """`lock_order` for an order the caller holds: the row locked until the transaction
    ends, and `order` itself brought up to date with it (what it carries besides its
    columns, such as its prefetched lines, stays). Whoever handed the instance over (the
    pipeline's runner) then holds what the step wrote once it commits, without reading the
    row again."""
    fresh = lock_order(order.pk)
    for field in Order._meta.concrete_fields:
        setattr(order, field.attname, getattr(fresh, field.attname))
    return order


class Notification(models.Model):
    """One email to the shopper. (order, kind, key) is unique, so no email goes twice: the
    pipeline's emails have an empty key (one each per order); a manager's resend is keyed by
    the confirmation form it came from, a refund's email by the refund."""

    class Kind(models.TextChoices):
        CONFIRMATION = "confirmation"
        FAILURE = "failure"
        CANCELLATION = "cancellation"
        CONFIRMATION_RESEND = "confirmation_resend"
        REFUND = "refund"

    class Status(models.TextChoices):
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"
        # Not sent on purpose: the address had its hourly share of failure emails.
        CAPPED = "capped"
        # Handed to the mail server, which never said whether it took it (a timeout after
        # the message went, a worker that died mid-send): never sent again on its own.
        UNCERTAIN = "uncertain"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    key = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SENDING)
    claimed_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order", "kind", "key"], name="notification_once_per_key")]
        # The failure-email cap counts one address's emails of the last hour.
        indexes = [models.Index(fields=["kind", "sent_at"], name="notification_kind_sent")]

    def __str__(self) -> str:
        return f"{self.kind} for {self.order_id}: {self.status}"


class ScheduledRetry(models.Model):
    """A step's next attempt, due at `due_at`: the row is the truth, not a message.

    A side step (receipt, email, an end's job) that fails transiently writes one and frees
    its worker; the pipeline tick (`orders.recovery`) queues it when due and moves `due_at`
    on by the step's lease, so a lost message or a killed worker only delays it.
    """

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="scheduled_retries")
    step = models.CharField(max_length=40)
    attempt = models.PositiveIntegerField(help_text="Attempts of this step already made in this run of it.")
    due_at = models.DateTimeField()
    waiting_for = models.CharField(
        max_length=300,
        blank=True,
        help_text="Why the step waits without spending an attempt (a hold, an open breaker); empty for a backoff.",
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order", "step"], name="scheduled_retry_once_per_step")]
        indexes = [models.Index(fields=["due_at"], name="scheduled_retry_due")]

    def __str__(self) -> str:
        return f"{self.step} of {self.order_id} (attempt {self.attempt + 1}) at {self.due_at}"


class HoldSide(models.TextChoices):
    """The sides of the pipeline a manager may hold (each names the steps it holds in `orders.flow`)."""

    PAYMENTS = "payments", "Payments (new authorisations)"
    CAPTURES = "captures", "Captures"
    RECEIPTS = "receipts", "Receipts"
    EMAILS = "emails", "Emails"


class PipelineHold(models.Model):
    """A manager's hold on one side of the pipeline: its steps make no outside call and their
    orders wait in their state until it is released (`orders.holds`). At most one is on per side."""

    side = models.CharField(max_length=20, choices=HoldSide.choices)
    reason = models.CharField(max_length=300)
    placed_by = models.CharField(max_length=150)
    placed_at = models.DateTimeField()
    released_by = models.CharField(max_length=150, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    release_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-placed_at"]
        constraints = [
            models.UniqueConstraint(fields=["side"], condition=Q(released_at__isnull=True), name="one_hold_on_per_side")
        ]
        permissions = [("hold_pipeline", "Can hold and release a side of the pipeline")]

    def __str__(self) -> str:
        return f"Hold on {self.get_side_display()}: {self.reason}"

    @property
    def is_on(self) -> bool:
        return self.released_at is None


class PipelineTick(models.Model):
    """When the pipeline tick last ran: every cluster ticks, the one that moves `ran_at` acts."""

    name = models.CharField(max_length=40, primary_key=True)
    ran_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.ran_at}"


class AuditRun(models.Model):
    """One run of the invariant audit (`orders.audit`), kept so the alarm and the staff read
    its findings without running the checks again."""

    started_at = models.DateTimeField()
    window_hours = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: every order was read.")
    violations = models.PositiveIntegerField()
    report = models.JSONField(help_text="The report `manage.py audit_invariants` prints.")

    class Meta:
        indexes = [models.Index(fields=["started_at"], name="audit_run_started")]

    def __str__(self) -> str:
        return f"audit of {self.started_at:%Y-%m-%d %H:%M}: {self.violations} violations"
