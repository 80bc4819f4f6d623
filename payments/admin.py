from django.contrib import admin

from framework.permissions import NamedActionRefusals
from framework.readonly_admin import ReadOnlyAdmin
from payments.models import Payment, Refund, RefundReason, StripeEvent


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ["order", "provider", "provider_reference", "amount", "currency", "status", "amount_refunded"]
    list_filter = ["status", "provider"]
    search_fields = ["order__reference", "provider_reference"]
    list_select_related = ["order"]
    exclude = ["client_secret"]


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    # No currency column: the reason took its room at 1280 px (the order page shows both).
    list_display = ["order", "amount", "status", "reason_code", "requested_by", "reason", "created_at"]
    list_filter = ["status", "reason_code"]
    search_fields = ["order__reference"]
    list_select_related = ["order"]


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "type", "received_at", "processed_at", "error"]
    list_filter = ["type"]
    search_fields = ["event_id"]


@admin.register(RefundReason)
class RefundReasonAdmin(NamedActionRefusals, admin.ModelAdmin):
    """The list a refund's reason is chosen from. A reason in use is retired (not active),
    never deleted: the refunds filed under it keep it."""

    list_display = ["label", "code", "show_to_shopper", "active", "position"]
    list_editable = ["show_to_shopper", "active", "position"]
    ordering = ["position", "label"]

    def get_readonly_fields(self, request, obj=None):
        return ["code"] if obj else []  # refunds are filed under the code

    def has_delete_permission(self, request, obj=None):
        return False
