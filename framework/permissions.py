"""Refusals that say which permission is missing, so staff know what to ask for."""

import copy
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.urls import Resolver404, resolve
from django.views.defaults import permission_denied as django_permission_denied

# The admin's own views of a model, by URL name suffix, and the permission each needs.
_ADMIN_VIEW_ACTIONS = {
    "changelist": "view",
    "history": "view",
    "add": "add",
    "change": "view",
    "delete": "delete",
    "password_change": "change",  # a user's password page
}


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


class _EveryPermission:
    """A stand-in user holding every permission, to ask a model admin whether anyone may do something."""

    is_active = is_staff = is_superuser = True

    def has_perm(self, permission, obj=None) -> bool:
        return True


def _allowed_with_every_permission(model_admin, action: str, request) -> bool:
    asking = copy.copy(request)
    asking.user = _EveryPermission()
    return getattr(model_admin, f"has_{action}_permission")(asking)


def _admin_refusal(request) -> str:
    """Why the admin refused this request, for its own model views, which refuse without saying."""
    try:
        url_name = resolve(request.path_info).url_name or ""
    except Resolver404:
        return ""
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        prefix = f"{opts.app_label}_{opts.model_name}_"
        action = _ADMIN_VIEW_ACTIONS.get(url_name.removeprefix(prefix)) if url_name.startswith(prefix) else None
        if action is None:
            continue
        if action == "view" and request.method == "POST" and url_name.endswith("_change"):
            action = "change"
        if not _allowed_with_every_permission(model_admin, action, request):
            return f"No one can {action} {opts.verbose_name_plural} here."  # a ledger line, a payment
        return missing_permission_message(_permission_name(model_admin, action))
    return ""


def permission_denied(request, exception, template_name="403.html"):
    """The 403 page (handler403): the refusal's own message, or, for an admin model page, the permission it needed."""
    message = str(exception) or _admin_refusal(request)
    return django_permission_denied(request, PermissionDenied(message), template_name=template_name)


# The mixin below goes before ModelAdmin in a model admin's bases; the type checker reads it as one.
if TYPE_CHECKING:
    _ModelAdminMixinBase = admin.ModelAdmin[Any]
else:
    _ModelAdminMixinBase = object


class NamedActionRefusals(_ModelAdminMixinBase):
    """A ModelAdmin mixin: a list action the user is not offered is refused with a 403 naming the
    permission it needs, or saying no one may (Django's admin only says "No action selected.").

    A model admin whose `has_<name>_permission` checks another permission than Django's
    `app_label.<name>_model` says which in `permission_names` (custom actions such as
    "redrive"; a page seen with another model's permission), for these refusals and the 403 page's.
    """

    permission_names: dict[str, str] = {}

    def changelist_view(self, request, extra_context=None):
        # Before Django's, which renders the list again when the user is offered no action at all.
        if request.method == "POST" and "action" in request.POST and self.has_view_or_change_permission(request):
            self._refuse_an_action_not_offered(request, request.POST["action"])
        return super().changelist_view(request, extra_context)

    def _refuse_an_action_not_offered(self, request, name: str) -> None:
        # ModelAdmin's private list of every declared action, which django-stubs leaves out.
        declared = {action_name: func for func, action_name, _ in self._get_base_actions()}  # type: ignore[attr-defined]
        if name in declared and name not in self.get_actions(request):
            entry = declared[name].allowed_permissions[0]
            if not _allowed_with_every_permission(self, entry, request):
                raise PermissionDenied(f"No one can run '{name}' on {self.opts.verbose_name_plural} here.")
            raise PermissionDenied(missing_permission_message(_permission_name(self, entry)))


def _permission_name(model_admin, action: str) -> str:
    """The permission `has_<action>_permission` of this model admin checks."""
    opts = model_admin.opts
    default = f"{opts.app_label}.{get_permission_codename(action, opts)}"
    return getattr(model_admin, "permission_names", {}).get(action, default)
