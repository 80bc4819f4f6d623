"""The staff activity log: every staff write, who made it, when, on what, the values before and after.

The log is django-auditlog's `LogEntry` table (one table for every kind of object, values
before and after as JSON, the actor taken from the request by its middleware), shown read-only
in the admin (backoffice/activity.py) to whoever holds `auditlog.view_logentry`: the auditor.

Two ways in, nothing else writes it:
- Models saved by staff through the admin are registered here (`TRACKED`): django-auditlog
  writes an entry on every create, change and delete (a product's price, an account's groups).
- Everything else a person does calls `record_staff_activity` once: stock moves (inventory),
  `create_staff` and `erase_shopper` (commands, with no request), a manager's action on an
  order (orders/history.py: the entry references the order's history event instead of
  copying it), and a hold on a side of the pipeline.
"""

from collections.abc import Mapping
from typing import Any

from auditlog.middleware import AuditlogMiddleware
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model

# "app_label.Model": what django-auditlog's register() is told for it. Orders are not here:
# the pipeline writes them all day, and a manager's action on one is in its history already.
TRACKED: dict[str, dict[str, Any]] = {
    "inventory.Product": {"include_fields": ["sku", "name", "price", "currency", "active", "low_stock_threshold"]},
    # Accounts and roles: never the password hash, nor the login time every login rewrites.
    "auth.User": {
        "include_fields": ["username", "email", "first_name", "last_name", "is_active", "is_staff", "is_superuser"],
        "m2m_fields": {"groups", "user_permissions"},
    },
    "auth.Group": {"m2m_fields": {"permissions"}},
}

CHANGE, CREATE, DELETE = "change", "create", "delete"


class StaffActivityMiddleware(AuditlogMiddleware):
    """django-auditlog's middleware (the staff member and their address on each entry a
    request writes), for the requests that can carry a staff login: those with the session
    cookie. Staff sign in through the session; a request without it (a shopper's order, a
    partner's token call, a health check) has no staff member to name and writes no entry,
    and auditlog's context would cost it a hundred Python calls and a signal receiver
    connected and disconnected (which empties Django's cache of every model's save
    receivers) on every request."""

    def __call__(self, request):
        if settings.SESSION_COOKIE_NAME not in request.COOKIES:
            return self.get_response(request)
        return super().__call__(request)


def register_tracked_models() -> None:
    """Register `TRACKED` with django-auditlog (staff/apps.py calls it once, at start-up)."""
    from auditlog.registry import auditlog

    for label, options in TRACKED.items():
        model = apps.get_model(label)
        if not auditlog.contains(model):
            auditlog.register(model, **options)


def _actor(actor: Any):
    """A user, from a user or a user name; None for the shop itself or a command."""
    if actor is None or isinstance(actor, Model):
        return actor
    return get_user_model().objects.filter(username=actor).first()


def record_staff_activity(
    *,
    actor: Any,
    what: str,
    target: Model | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    via: str = "",
    action: str = CHANGE,
    **details: Any,
):
    """Write one entry of the activity log and return it.

    `actor`: the staff user (or their user name); None with `via` naming the command or the
    system that acted (e.g. "manage.py create_staff"). `what`: what was done, in the shop's
    words ("adjust stock", "hold payments"). `target`: the object it was done to (None for
    the shop as a whole). `before` / `after`: the values that changed, by field name; a field
    in one only is shown as added or removed. `details`: anything else worth keeping
    (a reason, a note, the id of an order's history event), stored as JSON.
    """
    from auditlog.models import LogEntry

    before, after = dict(before or {}), dict(after or {})
    changes = {
        name: [_plain(before.get(name)), _plain(after.get(name))]
        for name in [*before, *(name for name in after if name not in before)]
    }
    user = _actor(actor)
    codes = {CREATE: LogEntry.Action.CREATE, CHANGE: LogEntry.Action.UPDATE, DELETE: LogEntry.Action.DELETE}
    additional = {"what": what, **({"via": via} if via else {}), **{k: _plain(v) for k, v in details.items()}}
    if target is None:
        target = ContentType.objects.get_for_model(ContentType)  # "the shop": an entry needs an object
        repr_ = "the shop"
    else:
        repr_ = str(target)
    return LogEntry.objects.log_create(
        target,
        force_log=True,
        action=codes[action],
        changes=changes,
        actor=user,
        actor_email=(getattr(user, "email", None) or None) if user else (via or None),
        additional_data=additional,
        object_repr=repr_,
        serialized_data=None,
    )


def _plain(value: Any) -> Any:
    """A value as JSON keeps it (Decimals, dates and models as text)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)
