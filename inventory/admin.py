from django import forms
from django.contrib import admin, messages

from framework.readonly_admin import ReadOnlyAdmin
from inventory.models import Product, StockMovement
from inventory.services import StockAdjustmentError, adjust_stock


class ProductForm(forms.ModelForm):
    """The product, plus a stock adjustment: a delta with a reason, never a new total typed over."""

    stock_adjustment = forms.IntegerField(
        required=False, help_text="Units to add (or, negative, to remove) from on hand: a ledger line."
    )
    adjustment_note = forms.CharField(required=False, max_length=200, help_text="Why (delivery, count, damage...).")

    class Meta:
        model = Product
        fields = ["sku", "name", "price", "currency", "active"]

    def clean(self):
        cleaned = super().clean()
        delta = cleaned.get("stock_adjustment") or 0
        if delta and not cleaned.get("adjustment_note"):
            self.add_error("adjustment_note", "Give a reason for the adjustment.")
        stock = getattr(self.instance, "stock", None) if self.instance.pk else None
        # A first look for the common mistake; adjust_stock checks again under the row lock.
        if stock is not None and stock.on_hand + delta < stock.reserved:
            self.add_error(
                "stock_adjustment",
                f"Cannot remove {-delta} units: {stock.on_hand} on hand, {stock.reserved} reserved by orders.",
            )
        if stock is None and delta < 0:
            self.add_error("stock_adjustment", "A new product has no stock to remove.")
        return cleaned


class StockMovementInline(admin.TabularInline):
    model = StockMovement
    fields = ["created_at", "quantity", "reason", "note", "order", "user"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-created_at", "-id"]
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order", "user")


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    form = ProductForm
    list_display = ["sku", "name", "price", "currency", "active", "on_hand", "reserved", "available"]
    list_filter = ["active", "currency"]
    search_fields = ["sku", "name"]
    readonly_fields = ["on_hand", "reserved", "available"]
    fieldsets = [
        (None, {"fields": ["sku", "name", "price", "currency", "active"]}),
        ("Stock", {"fields": ["on_hand", "reserved", "available", "stock_adjustment", "adjustment_note"]}),
    ]
    inlines = [StockMovementInline]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("stock")

    @admin.display(description="On hand")
    def on_hand(self, product):
        return getattr(getattr(product, "stock", None), "on_hand", 0)

    @admin.display(description="Reserved")
    def reserved(self, product):
        return getattr(getattr(product, "stock", None), "reserved", 0)

    @admin.display(description="Available")
    def available(self, product):
        stock = getattr(product, "stock", None)
        return stock.available if stock else 0

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        delta = form.cleaned_data.get("stock_adjustment") or 0
        try:
            adjust_stock(product=obj, delta=delta, user=request.user, note=form.cleaned_data.get("adjustment_note", ""))
        except StockAdjustmentError as error:
            messages.error(request, f"Stock not changed: {error}")


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "product", "quantity", "reason", "order", "user", "note"]
    list_filter = ["reason"]
    search_fields = ["product__sku", "order__reference"]
    list_select_related = ["product", "order", "user"]
