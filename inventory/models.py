from django.conf import settings
from django.db import models
from django.db.models import F, Q

from inventory.catalog_rules import validate_currency, validate_price, validate_sku


class Product(models.Model):
    sku = models.CharField(
        max_length=64,
        unique=True,
        validators=[validate_sku],
        help_text="A-Z, a-z, 0-9, '-', '_' and '.', starting with a letter or a digit.",
    )
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=12, decimal_places=2, validators=[validate_price])
    currency = models.CharField(
        max_length=3, default="USD", validators=[validate_currency], help_text="An ISO 4217 code: USD, EUR, JPY..."
    )
    active = models.BooleanField(default=True)
    low_stock_threshold = models.PositiveIntegerField(
        default=5, help_text="Available units at or below which the product counts as low on stock."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_not_negative"),
        ]
        # What stock staff may do beyond editing products (docs/ROLES.md's role table).
        permissions = [
            ("adjust_stock", "Can restock and adjust stock"),
            ("import_stock", "Can import stock from CSV"),
            ("export_stock", "Can export products and the ledger as CSV"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class Stock(models.Model):
    """Units of one product: on hand in the warehouse, and reserved by orders in flight.

    Changed only by the services in `inventory.services`, always with atomic updates;
    the CHECK constraints are the last line against overselling.
    """

    product = models.OneToOneField(Product, on_delete=models.CASCADE, related_name="stock")
    on_hand = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)

    class Meta:
        verbose_name_plural = "stock"
        constraints = [
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stock_on_hand_not_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="stock_reserved_not_negative"),
            models.CheckConstraint(condition=Q(reserved__lte=F("on_hand")), name="stock_reserved_within_on_hand"),
        ]

    def __str__(self) -> str:
        return f"{self.product.sku}: {self.on_hand} on hand, {self.reserved} reserved"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class StockMovement(models.Model):
    """One line of the stock ledger: a change of on-hand units. The lines sum to on hand."""

    class Reason(models.TextChoices):
        IMPORT = "import", "Import"
        RESTOCK = "restock", "Restock"
        ADJUSTMENT = "adjustment", "Adjustment"
        SALE = "sale", "Sale"
        RETURN = "return", "Return"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="movements")
    quantity = models.IntegerField(help_text="Change of on-hand units: positive adds, negative removes.")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    note = models.CharField(max_length=200, blank=True)
    order = models.ForeignKey("orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The form submission that wrote this line (the restock and adjust pages), so a double
    # click or a resent form writes it once.
    submission_key = models.UUIDField(null=True, blank=True, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # "4 stock ledger lines" under the list, as Django counts with the plural.
        verbose_name = "stock ledger line"
        verbose_name_plural = "stock ledger lines"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["product", "created_at"])]

    def __str__(self) -> str:
        return f"{self.product.sku} {self.quantity:+d} ({self.reason})"
