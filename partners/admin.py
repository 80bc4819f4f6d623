"""Partner API keys in the admin: issue one (its key shown once, on the page that issues it),
see when each was last used, revoke. Writes go through `partners.services`."""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from framework.permissions import NamedActionRefusals, require_permission
from partners.models import PartnerKey, Scope
from partners.services import issue_partner_key, revoke_partner_key


class IssueKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Who uses it: 'Warehouse Leeds', 'ERP'.")
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="Only what the partner needs: a warehouse that counts stock needs stock:read and stock:write.",
    )


@admin.register(PartnerKey)
class PartnerKeyAdmin(NamedActionRefusals, admin.ModelAdmin):
    list_display = ["name", "key_prefix", "scope_list", "status", "last_used_at", "created_at", "created_by"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    fields = readonly_fields = (
        "name",
        "key_prefix",
        "scope_list",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    )
    actions = ["revoke_selected"]
    permission_names = {"revoke": "partners.revoke_partnerkey"}

    @admin.display(description="key", ordering="prefix")
    def key_prefix(self, key: PartnerKey) -> str:
        return f"pk_{key.prefix}.…"

    @admin.display(description="scopes")
    def scope_list(self, key: PartnerKey) -> str:
        return ", ".join(key.scopes)

    @admin.display(description="status", ordering="revoked_at")
    def status(self, key: PartnerKey) -> str:
        return "Active" if key.is_active else f"Revoked {key.revoked_at:%Y-%m-%d %H:%M}"

    def has_change_permission(self, request, obj=None):
        return False  # a key's scopes never change: issue a new one and revoke the old

    def has_delete_permission(self, request, obj=None):
        return False  # revoked keys stay, with the ledger lines they wrote

    def has_revoke_permission(self, request):
        return request.user.has_perm(self.permission_names["revoke"])

    @admin.action(description="Revoke the selected keys", permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        revoked = [key for key in queryset if revoke_partner_key(key, revoked_by=request.user)]
        for key in revoked:
            self.log_change(request, key, "Revoked.")
        self.message_user(
            request, f"Revoked {len(revoked)} key(s): their next request is refused (401).", messages.SUCCESS
        )

    def add_view(self, request, form_url="", extra_context=None):
        """Issue a key: a name and scopes in, the key out, shown on this page only."""
        require_permission(request.user, "partners.add_partnerkey")
        form = IssueKeyForm(request.POST or None)
        context = {**self.admin_site.each_context(request), "opts": self.opts, "title": "Issue a partner API key"}
        if request.method == "POST" and form.is_valid():
            issued = issue_partner_key(
                name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"], issued_by=request.user
            )
            self.log_addition(request, issued.key, "Issued.")
            # On this page alone; the admin's pages are never cached (no-store), so no cache keeps it.
            return TemplateResponse(
                request, "admin/partners/partnerkey/issued.html", {**context, "key": issued.key, "token": issued.token}
            )
        return TemplateResponse(request, "admin/partners/partnerkey/issue.html", {**context, "form": form})
