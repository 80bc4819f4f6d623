"""Refusals that say which permission is missing, so staff know what to ask for."""

from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied


def describe_permission(permission: str) -> str:
    """ "'inventory.adjust_stock' (Can restock and adjust stock)": the codename and its name."""
    app_label, _, codename = permission.partition(".")
    name = (
        Permission.objects.filter(content_type__app_label=app_label, codename=codename)
        .values_list("name", flat=True)
        .first()
    )
    return f"'{permission}' ({name})" if name else f"'{permission}'"


def missing_permission_message(permission: str) -> str:
    return f"You need the permission {describe_permission(permission)}."


def require_permission(user, permission: str) -> None:
    """Raise PermissionDenied naming `permission` unless the user has it (the 403 page shows the message)."""
    if not user.has_perm(permission):
        raise PermissionDenied(missing_permission_message(permission))


class PermissionNamingAdmin(admin.ModelAdmin):
    """A model admin whose refused pages name the permission they needed, instead of a bare 403.

    Where the admin refuses a page to everyone (a ledger line is never added by hand), it says
    so rather than naming a permission that would not help.
    """

    # Actions this admin refuses whoever asks ("add", "change", "delete").
    refused_to_everyone: frozenset[str] = frozenset()

    def _refuse(self, request, action: str):
        permission = f"{self.opts.app_label}.{get_permission_codename(action, self.opts)}"
        if action in self.refused_to_everyone or request.user.has_perm(permission):
            raise PermissionDenied(f"No one can {action} {self.opts.verbose_name_plural} here.")
        raise PermissionDenied(missing_permission_message(permission))

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            self._refuse(request, "view")
        return super().changelist_view(request, extra_context)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if object_id is None and not self.has_add_permission(request):
            self._refuse(request, "add")
        if object_id is not None:
            if request.method == "POST" and not self.has_change_permission(request):
                self._refuse(request, "change")
            if not self.has_view_or_change_permission(request):
                self._refuse(request, "view")
        return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        if not self.has_delete_permission(request):
            self._refuse(request, "delete")
        return super().delete_view(request, object_id, extra_context)
