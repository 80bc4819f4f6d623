"""Partners' API keys, and the stock adjustments they made (each once per idempotency key)."""

from django.conf import settings
from django.db import models


class Scope(models.TextChoices):
    """What a key may do: each partner endpoint names the one it needs."""

    ORDERS_READ = "orders:read", "Read orders"
    STOCK_READ = "stock:read", "Read stock levels"
    STOCK_WRITE = "stock:write", "Adjust stock"


class PartnerKey(models.Model):
    """An API key a partner system (a warehouse, an ERP) sends as `Authorization: Bearer ...`.

    The key is `pk_<prefix>.<secret>`: the prefix finds the row, and only the SHA-256 of the
    secret is kept, so the database never holds a usable key. The secret has 256 random bits,
    which is why one fast hash suffices where a password needs a slow one.
    """

    name = models.CharField(max_length=100, help_text="Who uses it: 'Warehouse Leeds', 'ERP'.")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list, help_text="What the key may do: orders:read, stock:read, stock:write.")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    last_used_at = models.DateTimeField(
        null=True, blank=True, help_text="To the minute: the key's last request, written at most once a minute."
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = "partner API key"
        ordering = ["-created_at", "-id"]
        # Who may revoke keys, apart from who may issue them (docs/ROLES.md's role table).
        permissions = [("revoke_partnerkey", "Can revoke a partner API key")]

    def __str__(self) -> str:
        return f"{self.name} (pk_{self.prefix})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class PartnerStockAdjustment(models.Model):
    """One stock adjustment a partner asked for, under its Idempotency-Key: a replay finds it
    and gets `answer` again, and the unique key makes a racing twin wait for it and find it."""

    key = models.ForeignKey(PartnerKey, on_delete=models.PROTECT, related_name="adjustments")
    idempotency_key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="+")
    movement = models.OneToOneField(
        "inventory.StockMovement", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    answer = models.JSONField(help_text="The body the first request was answered with.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "idempotency_key"], name="partner_adjustment_once_per_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key.name}: {self.idempotency_key}"
