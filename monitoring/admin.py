from django.contrib import admin
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime

from framework.readonly_admin import ReadOnlyAdmin
from monitoring.alarms import RULE_TITLES
from monitoring.models import AlarmFiring
from monitoring.views import MONITORING_PERMISSION


@admin.register(AlarmFiring)
class AlarmFiringAdmin(ReadOnlyAdmin):
    """The history of every alarm's firings, read-only: the evaluation writes them.

    Seen by whoever may see the monitoring page (orders.view_monitoring), without a
    permission of its own to hand out."""

    permission_names = {"view": MONITORING_PERMISSION}  # what a refusal names
    list_display = ["rule_title", "summary", "started_at", "resolved_at", "emailed", "resolve_notified_at"]
    list_filter = ["rule", ("resolved_at", admin.EmptyFieldListFilter)]
    date_hierarchy = "started_at"
    fields = [
        "rule",
        "summary",
        "started_at",
        "last_seen_at",
        "resolved_at",
        "notified_at",
        "emailed",
        "resolve_notified_at",
        "details",
    ]

    @admin.display(description="Alarm", ordering="rule")
    def rule_title(self, firing: AlarmFiring) -> str:
        return RULE_TITLES.get(firing.rule, firing.rule)

    @admin.display(description="Emailed", ordering="notified_at")
    def emailed(self, firing: AlarmFiring) -> str:
        """Who the firing email reached and when; "nobody" in red where it reached no one."""
        if firing.notified_to:
            return format_html("{} to {}", date_format(localtime(firing.notified_at), "H:i"), firing.told)
        if firing.notified_at:
            return format_html('<strong style="color: var(--error-fg)">{}</strong>', "nobody")
        return "not yet"

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(MONITORING_PERMISSION)

    def has_module_permission(self, request):
        return request.user.has_perm(MONITORING_PERMISSION)

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "title": format_html(
                'Alarm firings <small>(<a href="{}">the monitoring page</a>)</small>', reverse("monitoring")
            ),
        }
        return super().changelist_view(request, extra_context)
