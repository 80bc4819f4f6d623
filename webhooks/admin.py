"""The webhooks in the admin: endpoints (URL, secret, event types, on or off) for whoever
holds `webhooks.manage_webhooks`, and the delivery log, every attempt of every event, with
redelivery and a test event. Actions call webhooks/delivery.py; nothing is sent from here."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from framework.permissions import NamedActionRefusals
from framework.readonly_admin import ReadOnlyAdmin
from webhooks import delivery
from webhooks.addresses import AddressRefused, allowed_addresses
from webhooks.models import EVENT_TYPES, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.outbox import OUTBOX

MANAGE_WEBHOOKS = "webhooks.manage_webhooks"


class EndpointForm(forms.ModelForm):
    url = forms.URLField(
        max_length=500, assume_scheme="https", help_text="Where the events are POSTed: a public address."
    )
    event_types = forms.MultipleChoiceField(
        choices=[(name, f"{name}: {text}") for name, text in EVENT_TYPES.items()],
        widget=forms.CheckboxSelectMultiple,
        help_text="The events this endpoint receives (docs/webhooks.md has the catalogue).",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "event_types", "active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            allowed_addresses(url)
        except AddressRefused as error:
            raise ValidationError(str(error))
        return url


class ManagedByPermission(NamedActionRefusals, admin.ModelAdmin):
    permission_names = {"add": MANAGE_WEBHOOKS, "change": MANAGE_WEBHOOKS, "manage": MANAGE_WEBHOOKS}

    def has_manage_permission(self, request) -> bool:
        return request.user.has_perm(MANAGE_WEBHOOKS)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ManagedByPermission):
    form = EndpointForm
    list_display = ["url", "description", "subscribed", "active", "failing_since", "next_attempt_at"]
    list_filter = ["active"]
    actions = ["send_test_event", "redeliver_failed"]

    def has_add_permission(self, request) -> bool:
        return self.has_manage_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return self.has_manage_permission(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Switched off instead: its delivery log stays, the record of what partners were told.
        return False

    def get_readonly_fields(self, request, obj=None):
        shown = ["signing_secret"] if obj else []
        return [*shown, "disabled_reason", "consecutive_failures", "failing_since", "next_attempt_at"]

    @admin.display(description="Signing secret")
    def signing_secret(self, endpoint: WebhookEndpoint) -> str:
        # The page of an endpoint is seen by auditors too: the secret only by who may manage it.
        if self._request is not None and self.has_manage_permission(self._request):
            return endpoint.secret
        return "(shown to who may manage webhooks)"

    _request = None

    def get_form(self, request, obj=None, change=False, **kwargs):
        self._request = request
        return super().get_form(request, obj, change=change, **kwargs)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        self._request = request
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="Events")
    def subscribed(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.event_types)

    def save_model(self, request, obj, form, change) -> None:
        if obj.active:
            obj.disabled_reason = ""
        super().save_model(request, obj, form, change)
        OUTBOX.subscriptions.forget()
        if not change:
            messages.info(
                request,
                f"Give the receiver this signing secret (it stays on the endpoint's page): {obj.secret}",
            )

    @admin.action(description="Send a test event", permissions=["manage"])
    def send_test_event(self, request, queryset) -> None:
        for endpoint in queryset:
            delivery.send_test_event(endpoint)
        self.message_user(request, f"A test event is on its way to {queryset.count()} endpoint(s).")

    @admin.action(description="Redeliver every failed event", permissions=["manage"])
    def redeliver_failed(self, request, queryset) -> None:
        failed = WebhookDelivery.objects.filter(endpoint__in=queryset, state=WebhookDelivery.State.FAILED)
        self.message_user(request, f"{delivery.redeliver(failed)} failed deliveries will be sent again.")


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = readonly_fields = ("at", "status", "error", "answer", "duration_ms")
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin, ManagedByPermission):
    """The delivery log: each event to each endpoint, its state and every attempt."""

    list_display = ["event_type", "event_key", "endpoint", "state", "attempts", "last_status", "last_attempt_at"]
    list_filter = ["state", "event__type", "endpoint"]
    search_fields = ["event__key", "event__message_id"]
    list_select_related = ["event", "endpoint"]
    fields = readonly_fields = (
        "event_id_header",
        "endpoint",
        "state",
        "attempts",
        "last_status",
        "last_error",
        "delivered_at",
        "payload",
    )
    inlines = [AttemptInline]
    actions = ["redeliver_selected"]

    @admin.display(description="Event", ordering="event__type")
    def event_type(self, row: WebhookDelivery) -> str:
        return row.event.type

    @admin.display(description="Order / key", ordering="event__key")
    def event_key(self, row: WebhookDelivery) -> str:
        return row.event.key

    @admin.display(description="webhook-id")
    def event_id_header(self, row: WebhookDelivery) -> str:
        return row.event.message_id

    @admin.display(description="Payload")
    def payload(self, row: WebhookDelivery) -> dict:
        return row.event.payload

    @admin.action(description="Redeliver the selected events", permissions=["manage"])
    def redeliver_selected(self, request, queryset) -> None:
        self.message_user(request, f"{delivery.redeliver(queryset)} deliveries will be sent again.")
