from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from orders.models import Order, OrderEvent, OrderLine
from orders.pipeline import IllegalTransition, cancel_order
from receipts.services import receipt_download_url


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
        "receipt_download",
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

    @admin.display(description="Receipt")
    def receipt_download(self, order):
        receipt = getattr(order, "receipt", None)
        if receipt is None or not receipt.stored_at:
            return "-"
        # A link to our own view, which signs a fresh short-lived link when it is clicked.
        url = reverse("admin:orders_order_receipt", args=[order.pk])
        return format_html('<a href="{}">Download receipt {}</a>', url, receipt.number)

    def get_urls(self):
        receipt_view = self.admin_site.admin_view(self.download_receipt_view)
        return [path("<int:order_id>/receipt/", receipt_view, name="orders_order_receipt"), *super().get_urls()]

    def download_receipt_view(self, request, order_id: int):
        """Send a manager to a freshly signed link to the order's receipt."""
        order = get_object_or_404(Order.objects.select_related("receipt"), pk=order_id)
        if not self.has_view_permission(request, order):
            raise PermissionDenied
        receipt = getattr(order, "receipt", None)
        if receipt is None or not receipt.stored_at:
            raise Http404("This order has no stored receipt.")
        return HttpResponseRedirect(receipt_download_url(receipt, base_url=request.build_absolute_uri("/")[:-1]))

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
