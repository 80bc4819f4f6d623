from django.contrib import admin

from payments.models import Payment, Refund, StripeEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    """Money rows change through the payment services only; admin shows them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ["order", "provider", "provider_reference", "amount", "currency", "status", "amount_refunded"]
    list_filter = ["status", "provider"]
    search_fields = ["order__reference", "provider_reference"]
    list_select_related = ["order"]
    exclude = ["client_secret"]


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ["order", "amount", "currency", "status", "requested_by", "reason", "created_at"]
    list_filter = ["status"]
    search_fields = ["order__reference"]
    list_select_related = ["order"]


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "type", "received_at", "processed_at", "error"]
    list_filter = ["type"]
    search_fields = ["event_id"]
