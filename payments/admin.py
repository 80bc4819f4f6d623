from django.contrib import admin

from framework.readonly_admin import ReadOnlyAdmin
from payments.models import Payment, Refund, StripeEvent


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
