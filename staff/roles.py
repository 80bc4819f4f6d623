"""Who may do what in the back office: each role is a Django group with these permissions.

The table is the truth; the groups in the database follow it (staff/0001 creates them,
`apply_roles` brings them back to it after every migrate: a permission given to a group by
hand in the admin is taken away again, so change this table instead). docs/ROLES.md shows it,
with the permission matrix that tests/fast/test_permission_matrix.py proves against the pages.

A superuser (`manage.py ensure_admin`) has every permission and belongs to no group.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.apps import apps as global_apps
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import Q


@dataclass(frozen=True)
class Role:
    key: str  # what `manage.py create_staff --role` takes
    group: str  # the Django group's name
    does: str  # one line for docs/ROLES.md
    permissions: tuple[str, ...] = ()  # "app_label.codename"
    every_view_permission: bool = False  # and every "view_" permission of every app
    extends: "Role | None" = None  # and every permission of that role

    @property
    def all_permissions(self) -> tuple[str, ...]:
        return (*(self.extends.all_permissions if self.extends else ()), *self.permissions)

    @property
    def receives_alarms(self) -> bool:
        """Whether its members are emailed when an alarm fires (so each needs an address)."""
        return RECEIVE_ALARMS in self.all_permissions


# Whoever holds it is emailed when an alarm fires (monitoring/alarms.py), as is every superuser.
RECEIVE_ALARMS = "monitoring.receive_alarms"


STOCK_CLERK = Role(
    "clerk",
    "Stock clerk",
    "Products and their stock: restock, adjust, import and export CSV, read the ledger.",
    (
        "inventory.view_product",
        "inventory.add_product",
        "inventory.change_product",
        "inventory.view_stock",
        "inventory.view_stockmovement",
        "inventory.adjust_stock",
        "inventory.import_stock",
        "inventory.export_stock",
    ),
)

ORDER_MANAGER = Role(
    "manager",
    "Order manager",
    "Orders: find, cancel, refund, redrive, retry, mark handled, resend, regenerate receipts, download receipts, "
    "export; webhook endpoints and their deliveries; "
    "the monitoring page; stock read-only; partner API keys: issue, revoke.",
    (
        "orders.view_order",
        "orders.view_orderline",
        "orders.view_orderevent",
        "orders.view_notification",
        "orders.cancel_order",
        # Managers refund: the one who answers the shopper about a chipped mug refunds it, and
        # cancelling (which they may) already returns a paid order's whole amount; a refund
        # only they could not make pushed them to cancel where part was due (docs/ROLES.md).
        "orders.refund_order",
        "payments.add_refund",
        "payments.change_refund",
        "orders.redrive_order",
        "orders.retry_order_step",
        "orders.mark_order_handled",
        "orders.resend_order_email",
        "orders.regenerate_receipt",
        "orders.download_receipt",
        "orders.export_orders",
        "orders.view_monitoring",
        # Holding a side of the pipeline through a provider's outage (orders/holds.py).
        "orders.view_pipelinehold",
        "orders.hold_pipeline",
        RECEIVE_ALARMS,  # the roles that act on orders are the ones an alarm must wake
        "payments.view_payment",
        "payments.view_refund",
        "payments.view_refundreason",
        "payments.view_stripeevent",
        "receipts.view_receipt",
        # The tiles of the manager's home page: failed and queued tasks, low-stock products.
        "django_q.view_failure",
        "django_q.view_success",
        "django_q.view_ormq",
        "django_q.view_schedule",
        "inventory.view_product",
        "inventory.view_stockmovement",
        # Partners' API keys: who wires a warehouse or an ERP to the shop's orders issues and revokes them.
        "partners.view_partnerkey",
        "partners.add_partnerkey",
        "partners.revoke_partnerkey",
        # Webhooks tell partners about orders: the role that acts on orders points them and replays them.
        "webhooks.manage_webhooks",
        "webhooks.view_webhookendpoint",
        "webhooks.view_webhookdelivery",
    ),
)

AUDITOR = Role(
    "auditor",
    "Auditor",
    "Reads everything (every view permission), changes nothing.",
    every_view_permission=True,
)

ROLES: dict[str, Role] = {role.key: role for role in (STOCK_CLERK, ORDER_MANAGER, AUDITOR)}
ROLE_GROUPS = frozenset(role.group for role in ROLES.values())


def _permissions_of(role: Role, Permission) -> tuple[list, list[str]]:
    """The role's Permission rows, and the names it lists that the database lacks."""
    wanted = set(role.all_permissions)
    query = Q(pk__in=[])
    for name in wanted:
        app_label, _, codename = name.partition(".")
        query |= Q(content_type__app_label=app_label, codename=codename)
    if role.every_view_permission:
        query |= Q(codename__startswith="view_")
    rows = list(Permission.objects.filter(query).select_related("content_type"))
    found = {f"{row.content_type.app_label}.{row.codename}" for row in rows}
    return rows, sorted(wanted - found)


def sync_role_groups(Group, Permission, *, strict: bool = True) -> None:
    """Make each role's group exist with exactly the role's permissions.

    Takes the models as arguments so the data migration can pass its historical ones. With
    `strict`, a permission the table names but the database lacks is an error (a typo, or an
    app's migration missing); the migration is lenient, since a later migration may add it.
    """
    for role in ROLES.values():
        permissions, missing = _permissions_of(role, Permission)
        if missing and strict:
            raise ImproperlyConfigured(f"Role {role.group!r} names permissions that do not exist: {missing}")
        group, _ = Group.objects.get_or_create(name=role.group)
        group.permissions.set(permissions)


def create_all_permissions(app_configs: Iterable, *, apps=global_apps, using: str = DEFAULT_DB_ALIAS) -> None:
    """Django creates permissions after migrate; roles need them before, on a fresh database."""
    from django.contrib.auth.management import create_permissions

    for app_config in app_configs:
        create_permissions(app_config, verbosity=0, apps=apps, using=using)


def apply_roles(sender, *, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    """post_migrate: the groups agree with the table (see the module's docstring).

    Connected for every app and acting on the last one's signal: by then Django has made every
    app's permissions, so the roles find them all (the Auditor's "every view_" too).
    """
    from django.contrib.auth.models import Group, Permission

    with_models = [config for config in global_apps.get_app_configs() if config.models_module is not None]
    if using != DEFAULT_DB_ALIAS or sender is not with_models[-1]:
        return
    with transaction.atomic():
        sync_role_groups(Group, Permission, strict=True)
