"""The staff activity log in the admin: every staff write, filterable by person, object and date.

Read-only for everyone (framework/readonly_admin.py): no one adds, edits or deletes an entry
here; who may read it holds `auditlog.view_logentry` (the auditor, and the superuser). What
writes it: framework/activity.py.
"""

from auditlog.models import LogEntry
from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from backoffice.admin import DateRangeFilter
from framework.readonly_admin import ReadOnlyAdmin


class ActivityLogAdmin(ReadOnlyAdmin):
    list_display = ["timestamp", "who", "what", "object_shown", "before_and_after"]
    list_display_links = ["timestamp"]
    list_filter = [
        ("actor", admin.RelatedOnlyFieldListFilter),
        ("content_type", admin.RelatedOnlyFieldListFilter),
        ("timestamp", DateRangeFilter),
    ]
    search_fields = ["object_repr", "object_pk", "actor__username", "actor_email"]
    list_select_related = ["actor", "content_type"]
    date_hierarchy = "timestamp"
    readonly_fields = ("timestamp", "who", "what", "object_shown", "before_and_after", "details", "remote_addr")
    fields = readonly_fields
    ordering = ["-timestamp", "-id"]

    @admin.display(description="Who", ordering="actor__username")
    def who(self, entry: LogEntry) -> str:
        if entry.actor is not None:
            return entry.actor.get_username()
        return entry.actor_email or "the shop (no person)"

    @admin.display(description="What")
    def what(self, entry: LogEntry) -> str:
        done = (entry.additional_data or {}).get("what")
        return done or f"{entry.get_action_display()} {entry.content_type.name}"

    @admin.display(description="Object", ordering="object_repr")
    def object_shown(self, entry: LogEntry):
        model = entry.content_type.model_class()
        if model is None or entry.object_repr == "the shop":
            return entry.object_repr
        try:
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[entry.object_pk])
        except NoReverseMatch:
            return f"{entry.content_type.name}: {entry.object_repr}"
        return format_html('{}: <a href="{}">{}</a>', entry.content_type.name, url, entry.object_repr)

    @admin.display(description="Before → after")
    def before_and_after(self, entry: LogEntry):
        changes = entry.changes if isinstance(entry.changes, dict) else {}
        return format_html_join(
            "",
            '<div class="activity-change" data-field="{}"><code>{}</code>: {} → {}</div>',
            ((name, name, _shown(values, 0), _shown(values, 1)) for name, values in changes.items()),
        )

    @admin.display(description="Details")
    def details(self, entry: LogEntry):
        extra = {k: v for k, v in (entry.additional_data or {}).items() if k != "what"}
        return format_html_join("", "<div><code>{}</code>: {}</div>", extra.items())


def _shown(values, index: int) -> str:
    """One side of a change: django-auditlog keeps [before, after] (a many-to-many change, a dict)."""
    if isinstance(values, dict):  # m2m: {"type": "add", "objects": [...]}
        objects = ", ".join(map(str, values.get("objects", [])))
        return f"{values.get('type')} {objects}" if index else "—"
    if isinstance(values, (list, tuple)) and len(values) > index:
        value = values[index]
        return "—" if value is None or value == "None" else str(value)
    return "—"


def register_activity_log() -> None:
    """Show the log with this page rather than django-auditlog's own (backoffice/apps.py, after autodiscovery)."""
    if admin.site.is_registered(LogEntry):
        admin.site.unregister(LogEntry)
    admin.site.register(LogEntry, ActivityLogAdmin)
