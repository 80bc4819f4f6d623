from django.contrib import admin, messages

from orders.models import Order, OrderEvent, OrderLine
from orders.pipeline import IllegalTransition, cancel_order


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = ["sku", "name", "quantity", "unit_price", "line_total"]


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ["created_at", "step", "attempt", "outcome", "from_state", "to_state", "duration_ms", "error"]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    """Orders are read-only here: their state changes through the pipeline and its actions."""

    list_display = ["reference", "email", "state", "total", "currency", "needs_attention", "created_at"]
    list_filter = ["state", "needs_attention", "currency"]
    search_fields = ["reference", "email"]
    date_hierarchy = "created_at"
    inlines = [OrderLineInline, OrderEventInline]
    actions = ["cancel_selected"]
    fields = [
        "reference",
        "email",
        "state",
        "currency",
        "subtotal",
        "tax",
        "total",
        "payment_method",
        "payment_summary",
        "failure_code",
        "failure_reason",
        "needs_attention",
        "created_at",
        "updated_at",
        "completed_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Payment")
    def payment_summary(self, order):
        payment = getattr(order, "payment", None)
        if payment is None:
            return "-"
        card = f"{payment.card_brand} ****{payment.card_last4}" if payment.card_last4 else ""
        amount = f"{payment.amount} {payment.currency}"
        return f"{payment.status} {amount} {card} ({payment.provider} {payment.provider_reference})"

    @admin.action(description="Cancel selected orders (refund or void, release stock)")
    def cancel_selected(self, request, queryset):
        for order in queryset:
            try:
                cancel_order(order, reason=f"Cancelled by {request.user.get_username()}.")
            # Messages open with a word: admin capitalises the first letter, and references are case-sensitive.
            except IllegalTransition as error:
                self.message_user(request, f"Not cancelled: {error}", messages.WARNING)
            else:
                self.message_user(request, f"Order {order.reference} cancelled.", messages.SUCCESS)
