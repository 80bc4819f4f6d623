from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from orders.models import Order, OrderEvent, OrderLine
from orders.services import cancel_order
from orders.transitions import IllegalTransition
from payments.models import Payment, Refund
from payments.refunds import RefundNotAllowed, refundable_amount, request_refund
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
    fields = ["created_at", "step", "kind", "attempt", "outcome", "duration_ms", "actor_kind", "actor", "summary"]


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = ["created_at", "amount", "currency", "status", "reason", "requested_by", "error"]


class RefundForm(forms.Form):
    amount = forms.DecimalField(
        required=False, min_value=Decimal("0.01"), decimal_places=2, help_text="Leave empty to refund everything left."
    )
    reason = forms.CharField(max_length=200, required=False)


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    """Orders are read-only here: their state changes through the pipeline and its actions."""

    list_display = ["reference", "email", "state", "total", "currency", "needs_attention", "created_at"]
    list_filter = ["state", "needs_attention", "currency"]
    search_fields = ["reference", "email"]
    date_hierarchy = "created_at"
    inlines = [OrderLineInline, RefundInline, OrderEventInline]
    actions = ["cancel_selected", "refund_selected"]
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
        "money_actions",
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

    def download_receipt_view(self, request, order_id: int):
        """Send a manager to a freshly signed link to the order's receipt."""
        order = get_object_or_404(Order.objects.select_related("receipt"), pk=order_id)
        if not self.has_view_permission(request, order):
            raise PermissionDenied
        receipt = getattr(order, "receipt", None)
        if receipt is None or not receipt.stored_at:
            raise Http404("This order has no stored receipt.")
        return HttpResponseRedirect(receipt_download_url(receipt, base_url=request.build_absolute_uri("/")[:-1]))

    @admin.display(description="Refund")
    def money_actions(self, order):
        payment = getattr(order, "payment", None)
        if payment is None or payment.status not in (Payment.Status.CAPTURED, Payment.Status.PARTIALLY_REFUNDED):
            return "-"
        url = reverse("admin:orders_order_refund", args=[order.pk])
        return format_html('<a class="button" href="{}">Refund all or part…</a>', url)

    def get_urls(self):
        return [
            path("<int:order_id>/refund/", self.admin_site.admin_view(self.refund_view), name="orders_order_refund"),
            path(
                "<int:order_id>/receipt/",
                self.admin_site.admin_view(self.download_receipt_view),
                name="orders_order_receipt",
            ),
            *super().get_urls(),
        ]

    def refund_view(self, request, order_id: int):
        """A small form: refund part or all of what is left of an order's captured payment."""
        order = get_object_or_404(Order.objects.select_related("payment"), pk=order_id)
        if not self.has_change_permission(request, order):
            raise PermissionDenied
        payment = getattr(order, "payment", None)
        form = RefundForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                refund = request_refund(
                    order,
                    form.cleaned_data["amount"],
                    requested_by=request.user.get_username(),
                    reason=form.cleaned_data["reason"],
                )
            except RefundNotAllowed as error:
                form.add_error("amount", str(error))
            else:
                refund.refresh_from_db()
                self.message_user(request, f"Refund of {refund.amount} {refund.currency}: {refund.status}.")
                return redirect("admin:orders_order_change", order.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Refund {order.reference}",
            "order": order,
            "payment": payment,
            "refundable": refundable_amount(payment) if payment else 0,
            "form": form,
        }
        return TemplateResponse(request, "admin/orders/order/refund.html", context)

    @admin.action(description="Refund selected orders in full (what is left of each payment)", permissions=["change"])
    def refund_selected(self, request, queryset):
        for order in queryset:
            try:
                refund = request_refund(order, requested_by=request.user.get_username(), reason="Refunded in full.")
            except RefundNotAllowed as error:
                self.message_user(request, str(error), messages.WARNING)
            else:
                refund.refresh_from_db()
                self.message_user(
                    request, f"{order.reference}: refund of {refund.amount} {refund.currency} {refund.status}."
                )

    @admin.action(description="Cancel selected orders (refund or void, release stock)", permissions=["change"])
    def cancel_selected(self, request, queryset):
        for order in queryset:
            try:
                cancel_order(order, cancelled_by=request.user.get_username())
            # Messages open with a word: admin capitalises the first letter, and references are case-sensitive.
            except IllegalTransition as error:
                self.message_user(request, f"Not cancelled: {error}", messages.WARNING)
            else:
                self.message_user(request, f"Order {order.reference} cancelled.", messages.SUCCESS)
