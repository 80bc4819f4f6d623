"""Who may open which admin page and run which action: the one table that docs/ROLES.md
shows and tests/fast/test_permission_matrix.py proves, request by request, role by role.

Every address the admin answers has a row (the test fails on one without); a POST that does
something names its `effect`, which must change for who is allowed and, like everything else
(`books`), stay the same for who is refused. To add a page or an action: add a row to MATRIX
(what the scene must hold for its URL goes in `tests/support/matrix_scene.py`), then
regenerate the documents (`tests/support/roles_doc.py`):

    make roles-doc
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass

ANONYMOUS, CLERK, MANAGER, AUDITOR, NO_ROLE, SUPERUSER = (
    "anonymous",
    "clerk",
    "manager",
    "auditor",
    "staff",
    "superuser",
)
# Columns of the table, in order, with their headings.
WHO = {
    ANONYMOUS: "Anonymous",
    CLERK: "Stock clerk",
    MANAGER: "Order manager",
    AUDITOR: "Auditor",
    NO_ROLE: "Staff, no role",
    SUPERUSER: "Superuser",
}
STAFF = frozenset(WHO) - {ANONYMOUS}
NOBODY = frozenset()
ONLY_SUPERUSER = frozenset({SUPERUSER})
READERS_OF_STOCK = frozenset({CLERK, MANAGER, AUDITOR, SUPERUSER})
STOCK_KEEPERS = frozenset({CLERK, SUPERUSER})
ORDER_READERS = frozenset({MANAGER, AUDITOR, SUPERUSER})
ORDER_ACTORS = frozenset({MANAGER, SUPERUSER})  # refunds included: staff/roles.py says why
READERS_OF_ALL = frozenset({AUDITOR, SUPERUSER})  # accounts, login attempts: no role's job but the auditor's

# Django's own pages every account uses on itself, for a reason other than a role: the matrix leaves them out.
UNLISTED_ADMIN_URLS = {
    "admin:login": "the login form: open to everyone, it is how anyone gets in",
    "admin:logout": "logging out: open to everyone logged in",
    "admin:password_change": "changing one's own password: every account may",
    "admin:password_change_done": "the page after changing one's own password",
    "two_factor": "one's own second factor (enrol, or type a code), for whoever moves money: test_two_factor.py",
    "two_factor_qr": "the QR code of one's own authenticator app while enrolling it; tests/fast/test_two_factor.py",
}


@dataclass(frozen=True)
class Access:
    """One request, and who gets through.

    Refused staff get a 403 naming the first of `permissions` they lack (or saying that no one
    may, where `permissions` is empty), unless `refused` says another status; an anonymous
    visitor is sent to the login page.
    """

    what: str
    method: str
    path: str  # formatted with the scene: {product}, {failed}, ...
    allowed: frozenset[str]
    permissions: tuple[str, ...] = ()  # what the request needs, in the order the page checks them
    data: Callable[[dict], dict] | None = None  # the POST body, given the scene
    effect: Callable[[dict], object] | None = None  # changes when it is done; None: it writes nothing
    refused: int = 403
    allowed_status: tuple[int, ...] = (200, 302)
    refusal: str = ""  # the words of a 403 that names no permission ("No one can" by default)
    shows: tuple[str, frozenset[str]] | None = None  # text on the page, and exactly who sees it
    anonymous_status: int = 302  # an anonymous visitor is sent to the login page


# --- what POST bodies and effects read --------------------------------------------------------


def _stock_csv(scene: dict) -> str:
    return f"sku,name,price,currency,on_hand\n{scene['sku']},Ceramic mug,12.50,USD,9\n"


def _upload(scene: dict) -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return {"file": SimpleUploadedFile("stock.csv", _stock_csv(scene).encode()), "preview": "Preview"}


def _stock_form(quantity: str) -> Callable[[dict], dict]:
    return lambda scene: {"quantity": quantity, "reason": "matrix", "submission_key": str(uuid.uuid4())}


def _product_fields(scene: dict, sku: str = "") -> dict:
    fields = {"name": "Renamed", "price": "1.00", "currency": "USD", "active": "on", "low_stock_threshold": "5"}
    return {**fields, "sku": sku or scene["sku"]}


def _catalog(scene: dict) -> object:
    from tests.support.catalog import catalog_state

    return catalog_state()


def _reason(scene: dict) -> dict:
    return {"reason": "matrix", "action_token": uuid.uuid4().hex}


def _refund_form(scene: dict) -> dict:
    return {
        **_reason(scene),
        "refund": "part",
        "refund_reason": "damaged",
        "amount": "1.00",
        f"return_{scene['product']}": "0",
    }


def _bulk(action: str, order: str, *, confirmed: bool) -> Callable[[dict], dict]:
    def data(scene: dict) -> dict:
        from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

        body = {"action": action, ACTION_CHECKBOX_NAME: [scene[order]]}
        return {**body, **_reason(scene), "confirmed": "yes"} if confirmed else body

    return data


def _events(order: str, kind: str) -> Callable[[dict], object]:
    def count(scene: dict) -> int:
        from orders.models import OrderEvent

        return OrderEvent.objects.filter(order_id=scene[order], kind=kind).count()

    return count


def _state(order: str) -> Callable[[dict], object]:
    def state(scene: dict) -> tuple:
        from orders.models import Order

        return Order.objects.values_list("state", "redrive_count").get(pk=scene[order])

    return state


def _refunds(scene: dict) -> int:
    from payments.models import Refund

    return Refund.objects.filter(order_id=scene["completed"]).count()


def _rows_of(label: str) -> Callable[[dict], object]:
    def rows(scene: dict) -> int:
        from django.apps import apps

        return apps.get_model(label).objects.count()

    return rows


def _revoked_keys(scene: dict) -> int:
    from partners.models import PartnerKey

    return PartnerKey.objects.filter(revoked_at__isnull=False).count()


def _emails_sent(scene: dict) -> int:
    from django.core import mail

    return len(mail.outbox)


def _group_names(scene: dict) -> list:
    from django.contrib.auth.models import Group

    return sorted(Group.objects.values_list("name", flat=True))


def _reason_labels(scene: dict) -> list:
    from payments.models import RefundReason

    return sorted(RefundReason.objects.values_list("label", flat=True))


def _password(scene: dict) -> str:
    from django.contrib.auth.models import User

    return User.objects.get(pk=scene["user"]).password


NEW_PASSWORD = "an entirely new passphrase 42"


# --- the rows ------------------------------------------------------------------------------------


def model_pages(
    label: str,
    model: str,
    key: str,
    *,
    view: frozenset[str],
    add: frozenset[str] = NOBODY,
    change: frozenset[str] = NOBODY,
    delete: frozenset[str] = NOBODY,
    view_permission: str = "",
    write_permission: str = "",
    add_data: Callable[[dict], dict] | None = None,
    change_data: Callable[[dict], dict] | None = None,
    change_effect: Callable[[dict], object] | None = None,
) -> list[Access]:
    """The admin's own pages of one model: list, row, history, short address, add, change, delete.

    `add`, `change`, `delete` say who may (holding `write_permission` for all three, where the
    admin checks one permission of its own rather than Django's three); a POST is listed where
    it can be made (a body for who may add or change, or no one may). Who may not gets a 403
    naming the permission, or saying no one can where no one may.
    """
    app_label, model_name = model.split(".")
    base = f"/admin/{app_label}/{model_name}/"
    row = base + "{" + key + "}/"

    def needs(action: str, who: frozenset[str]) -> tuple[str, ...]:
        if action == "view" and view_permission:
            return (view_permission,)
        if action != "view" and write_permission and who:
            return (write_permission,)
        return (f"{app_label}.{action}_{model_name}",) if who else ()

    rows = [
        Access(f"{label}: list", "GET", base, view, needs("view", view)),
        Access(f"{label}: a row", "GET", row + "change/", view, needs("view", view)),
        Access(f"{label}: a row's history", "GET", row + "history/", view, needs("view", view)),
        Access(f"{label}: a row's short address (sends on to the row)", "GET", row, STAFF),
        Access(f"{label}: add page", "GET", base + "add/", add, needs("add", add)),
    ]
    if add_data or not add:
        rows.append(Access(f"{label}: add", "POST", base + "add/", add, needs("add", add), add_data, _rows_of(model)))
    if change_data or not change:
        rows.append(
            Access(
                f"{label}: change a row",
                "POST",
                row + "change/",
                change,
                needs("change", change),
                change_data or (lambda scene: {}),
                change_effect,
            )
        )
    rows += [
        Access(f"{label}: delete page", "GET", row + "delete/", delete, needs("delete", delete)),
        Access(
            f"{label}: delete a row",
            "POST",
            row + "delete/",
            delete,
            needs("delete", delete),
            lambda scene: {"post": "yes"},
            _rows_of(model),
        ),
    ]
    return rows


def app_index(app_label: str, who: frozenset[str]) -> Access:
    """An app's page of models: Django's admin answers 404 to whoever may see none of them."""
    return Access(f"App page: {app_label}", "GET", f"/admin/{app_label}/", who, refused=404)


PRODUCT = "/admin/inventory/product/"
LEDGER = "/admin/inventory/stockmovement/"
ORDER = "/admin/orders/order/"

HOME_AND_SITE = [
    Access(
        "Admin home page: order tiles",
        "GET",
        "/admin/",
        STAFF,
        shows=("needing attention", ORDER_READERS),
    ),
    Access("Admin home page: stock tile", "GET", "/admin/", STAFF, shows=("Low-stock product", READERS_OF_STOCK)),
    app_index("auditlog", READERS_OF_ALL),
    app_index("auth", READERS_OF_ALL),
    app_index("otp_totp", READERS_OF_ALL),
    app_index("otp_static", READERS_OF_ALL),
    app_index("axes", READERS_OF_ALL),
    app_index("django_q", ORDER_READERS),
    app_index("inventory", READERS_OF_STOCK),
    app_index("orders", ORDER_READERS),
    app_index("payments", ORDER_READERS),
    app_index("partners", ORDER_READERS),
    Access("The admin's translations (JavaScript)", "GET", "/admin/jsi18n/", STAFF),
    Access(
        "Autocomplete (no page uses one)",
        "GET",
        "/admin/autocomplete/?app_label=orders&model_name=order&field_name=email",
        NOBODY,
        refusal="You do not have permission to open this page.",
    ),
    Access(
        "'View on site' (no model has a page on the site)",
        "GET",
        "/admin/r/{order_type}/{completed}/",
        NOBODY,
        refused=404,
    ),
    Access("An address the admin does not have", "GET", "/admin/no-such-page/", NOBODY, refused=404),
    Access("Monitoring page", "GET", "/admin/monitoring/", ORDER_READERS, ("orders.view_monitoring",)),
]

STOCK = [
    Access(
        "Product list with stock, low-stock filter",
        "GET",
        PRODUCT + "?low_stock=yes",
        READERS_OF_STOCK,
        ("inventory.view_product",),
    ),
    Access("Product page", "GET", PRODUCT + "{product}/change/", READERS_OF_STOCK, ("inventory.view_product",)),
    Access("Product history", "GET", PRODUCT + "{product}/history/", READERS_OF_STOCK, ("inventory.view_product",)),
    Access("Product: short address (sends on to the product)", "GET", PRODUCT + "{product}/", STAFF),
    Access("Add product page", "GET", PRODUCT + "add/", STOCK_KEEPERS, ("inventory.add_product",)),
    Access(
        "Edit a product",
        "POST",
        PRODUCT + "{product}/change/",
        STOCK_KEEPERS,
        ("inventory.change_product",),
        _product_fields,
        _catalog,
    ),
    Access(
        "Add a product",
        "POST",
        PRODUCT + "add/",
        STOCK_KEEPERS,
        ("inventory.add_product",),
        lambda scene: _product_fields(scene, sku=f"NEW-{uuid.uuid4().hex[:8]}"),
        _catalog,
    ),
    Access("Delete product page", "GET", PRODUCT + "{product}/delete/", NOBODY),
    Access(
        "Delete a product (take it off sale instead)",
        "POST",
        PRODUCT + "{product}/delete/",
        NOBODY,
        data=lambda scene: {"post": "yes"},
    ),
    Access(
        "Delete products selected in the list",
        "POST",
        PRODUCT,
        NOBODY,
        ("inventory.view_product",),
        lambda scene: {"action": "delete_selected", "_selected_action": [scene["product"]]},
    ),
    Access("Restock form", "GET", PRODUCT + "{product}/restock/", STOCK_KEEPERS, ("inventory.adjust_stock",)),
    Access(
        "Restock",
        "POST",
        PRODUCT + "{product}/restock/",
        STOCK_KEEPERS,
        ("inventory.adjust_stock",),
        _stock_form("5"),
        _catalog,
    ),
    Access("Adjust form", "GET", PRODUCT + "{product}/adjust/", STOCK_KEEPERS, ("inventory.adjust_stock",)),
    Access(
        "Adjust stock",
        "POST",
        PRODUCT + "{product}/adjust/",
        STOCK_KEEPERS,
        ("inventory.adjust_stock",),
        _stock_form("-1"),
        _catalog,
    ),
    Access(
        "Ledger of a product",
        "GET",
        LEDGER + "?product__id__exact={product}",
        READERS_OF_STOCK,
        ("inventory.view_stockmovement",),
    ),
    Access("Ledger line", "GET", LEDGER + "{movement}/change/", READERS_OF_STOCK, ("inventory.view_stockmovement",)),
    Access(
        "Ledger line history",
        "GET",
        LEDGER + "{movement}/history/",
        READERS_OF_STOCK,
        ("inventory.view_stockmovement",),
    ),
    Access("Ledger line: short address (sends on to the line)", "GET", LEDGER + "{movement}/", STAFF),
    Access("Add ledger line page", "GET", LEDGER + "add/", NOBODY),
    Access("Add a ledger line", "POST", LEDGER + "add/", NOBODY, data=lambda scene: {"quantity": "99"}),
    Access(
        "Change a ledger line", "POST", LEDGER + "{movement}/change/", NOBODY, data=lambda scene: {"quantity": "99"}
    ),
    Access("Delete ledger line page", "GET", LEDGER + "{movement}/delete/", NOBODY),
    Access("Delete a ledger line", "POST", LEDGER + "{movement}/delete/", NOBODY, data=lambda scene: {"post": "yes"}),
    Access("Import page", "GET", PRODUCT + "import/", STOCK_KEEPERS, ("inventory.import_stock",)),
    Access("Import preview", "POST", PRODUCT + "import/", STOCK_KEEPERS, ("inventory.import_stock",), _upload),
    Access(
        "Import",
        "POST",
        PRODUCT + "import/",
        STOCK_KEEPERS,
        ("inventory.import_stock",),
        lambda scene: {"csv_text": _stock_csv(scene), "file_name": "stock.csv", "apply": "Import"},
        _catalog,
    ),
    Access("Export products with stock (CSV)", "GET", PRODUCT + "export/", STOCK_KEEPERS, ("inventory.export_stock",)),
    Access(
        "Export the ledger of a period (CSV)",
        "GET",
        LEDGER + "export/?start=2000-01-01&end=2100-01-01",
        STOCK_KEEPERS,
        ("inventory.export_stock",),
    ),
]

VIEW_ORDER = "orders.view_order"


def order_action(
    name: str, order: str, permission: str, who: frozenset[str], effect, *, path: str = "", title: str = ""
) -> list:
    """An action's confirmation page (GET) and the action (POST), on the scene's `order`."""
    path = path or ORDER + "{" + order + "}/action/" + name + "/"
    title = title or name.capitalize()
    data = _refund_form if name == "refund" else _reason
    return [
        Access(f"{title}: confirmation page", "GET", path, who, (permission, VIEW_ORDER)),
        Access(title, "POST", path, who, (permission, VIEW_ORDER), data, effect),
    ]


ORDERS = [
    Access("Order list", "GET", ORDER, ORDER_READERS, (VIEW_ORDER,)),
    Access(
        "Order list: needing attention (a home tile's link)",
        "GET",
        ORDER + "?attention=needs",
        ORDER_READERS,
        (VIEW_ORDER,),
    ),
    Access(
        "Order list: retrying now (a home tile's link)",
        "GET",
        ORDER + "?attention=retrying",
        ORDER_READERS,
        (VIEW_ORDER,),
    ),
    Access(
        "Order page: timeline, history, the actions one may take",
        "GET",
        ORDER + "{completed}/change/",
        ORDER_READERS,
        (VIEW_ORDER,),
        shows=("Resend the confirmation email", ORDER_ACTORS),
    ),
    Access("Order: Django's change history", "GET", ORDER + "{completed}/history/", ORDER_READERS, (VIEW_ORDER,)),
    Access("Order: short address (sends on to the order)", "GET", ORDER + "{completed}/", STAFF),
    Access("Add order page", "GET", ORDER + "add/", NOBODY),
    Access("Add an order", "POST", ORDER + "add/", NOBODY, data=lambda scene: {"email": "x@example.com"}),
    Access(
        "Change an order (no Save: actions only)",
        "POST",
        ORDER + "{completed}/change/",
        NOBODY,
        data=lambda scene: {"email": "x@example.com"},
    ),
    Access("Delete order page", "GET", ORDER + "{completed}/delete/", NOBODY),
    Access("Delete an order", "POST", ORDER + "{completed}/delete/", NOBODY, data=lambda scene: {"post": "yes"}),
    *order_action("redrive", "failed", "orders.redrive_order", ORDER_ACTORS, _state("failed")),
    *order_action("retry", "stuck", "orders.retry_order_step", ORDER_ACTORS, _events("stuck", "step_retry_requested")),
    *order_action(
        "handled",
        "failed",
        "orders.mark_order_handled",
        ORDER_ACTORS,
        _events("failed", "marked_handled"),
        title="Mark handled",
    ),
    *order_action(
        "resend", "completed", "orders.resend_order_email", ORDER_ACTORS, _events("completed", "email_resent")
    ),
    *order_action(
        "regenerate", "stuck", "orders.regenerate_receipt", ORDER_ACTORS, _events("stuck", "receipt_regenerated")
    ),
    *order_action("cancel", "stuck", "orders.cancel_order", ORDER_ACTORS, _state("stuck")),
    *order_action("refund", "completed", "orders.refund_order", ORDER_ACTORS, _refunds),
    *order_action(
        "refund",
        "completed",
        "orders.refund_order",
        ORDER_ACTORS,
        _refunds,
        path=ORDER + "{completed}/refund/",
        title="Refund (its own address)",
    ),
    Access(
        "Add an internal note",
        "POST",
        ORDER + "{completed}/note/",
        ORDER_ACTORS,
        ("orders.retry_order_step", VIEW_ORDER),
        lambda scene: {"note": "Shopper called.", "action_token": uuid.uuid4().hex},
        _events("completed", "note_added"),
    ),
    Access("Execution as JSON", "GET", ORDER + "{completed}/execution.json", ORDER_READERS, (VIEW_ORDER,)),
    Access("Download the receipt", "GET", ORDER + "{completed}/receipt/", ORDER_ACTORS, ("orders.download_receipt",)),
    Access(
        "Download a credit note",
        "GET",
        ORDER + "{completed}/credit-notes/{credit_note}/",
        ORDER_ACTORS,
        ("orders.download_receipt",),
    ),
    Access("Export the order list (CSV)", "GET", ORDER + "export.csv", ORDER_ACTORS, ("orders.export_orders",)),
    Access(
        "Bulk redrive: confirmation page",
        "POST",
        ORDER,
        ORDER_ACTORS,
        (VIEW_ORDER, "orders.redrive_order"),
        _bulk("redrive_selected", "failed", confirmed=False),
    ),
    Access(
        "Bulk redrive",
        "POST",
        ORDER,
        ORDER_ACTORS,
        (VIEW_ORDER, "orders.redrive_order"),
        _bulk("redrive_selected", "failed", confirmed=True),
        _state("failed"),
    ),
    Access(
        "Bulk retry: confirmation page",
        "POST",
        ORDER,
        ORDER_ACTORS,
        (VIEW_ORDER, "orders.retry_order_step"),
        _bulk("retry_selected", "stuck", confirmed=False),
    ),
    Access(
        "Bulk retry",
        "POST",
        ORDER,
        ORDER_ACTORS,
        (VIEW_ORDER, "orders.retry_order_step"),
        _bulk("retry_selected", "stuck", confirmed=True),
        _events("stuck", "step_retry_requested"),
    ),
    Access(
        "Bulk mark handled: confirmation page",
        "POST",
        ORDER,
        ORDER_ACTORS,
        (VIEW_ORDER, "orders.mark_order_handled"),
        _bulk("mark_handled_selected", "failed", confirmed=False),
    ),
    Access(
        "Bulk mark handled",
        "POST",
        ORDER,
        ORDER_ACTORS,
        (VIEW_ORDER, "orders.mark_order_handled"),
        _bulk("mark_handled_selected", "failed", confirmed=True),
        _events("failed", "marked_handled"),
    ),
    Access(
        "Bulk cancel: confirmation page",
        "POST",
        ORDER,
        ORDER_ACTORS,
        (VIEW_ORDER, "orders.cancel_order"),
        _bulk("cancel_selected", "stuck", confirmed=False),
    ),
    Access(
        "Bulk cancel",
        "POST",
        ORDER,
        ORDER_ACTORS,
        (VIEW_ORDER, "orders.cancel_order"),
        _bulk("cancel_selected", "stuck", confirmed=True),
        _state("stuck"),
    ),
]


def _holds_on(scene: dict) -> int:
    from orders.models import PipelineHold

    return PipelineHold.objects.filter(released_at__isnull=True).count()


HOLDS = [
    *model_pages("Pipeline holds", "orders.pipelinehold", "hold", view=ORDER_READERS),
    Access(
        "Pipeline holds: place page",
        "GET",
        "/admin/orders/pipelinehold/place/",
        ORDER_ACTORS,
        ("orders.view_pipelinehold", "orders.hold_pipeline"),
    ),
    Access(
        "Pipeline holds: place a hold",
        "POST",
        "/admin/orders/pipelinehold/place/",
        ORDER_ACTORS,
        ("orders.view_pipelinehold", "orders.hold_pipeline"),
        lambda scene: {"side": "emails", "reason": "SMTP relay down"},
        _holds_on,
    ),
    Access(
        "Pipeline holds: release page",
        "GET",
        "/admin/orders/pipelinehold/{hold}/release/",
        ORDER_ACTORS,
        ("orders.view_pipelinehold", "orders.hold_pipeline"),
    ),
    Access(
        "Pipeline holds: release a hold",
        "POST",
        "/admin/orders/pipelinehold/{hold}/release/",
        ORDER_ACTORS,
        ("orders.view_pipelinehold", "orders.hold_pipeline"),
        lambda scene: {"reason": "receipts bucket back"},
        _holds_on,
    ),
]

RECORDS = [
    *model_pages("Payments", "payments.payment", "payment", view=ORDER_READERS),
    *model_pages("Refunds", "payments.refund", "refund", view=ORDER_READERS),
    *model_pages(
        "Refund reasons",
        "payments.refundreason",
        "refund_reason",
        view=ORDER_READERS,
        add=ONLY_SUPERUSER,
        change=ONLY_SUPERUSER,
        add_data=lambda scene: {"code": "late", "label": "Arrived late", "show_to_shopper": "on", "position": "9"},
        change_data=lambda scene: {"label": "Damaged in transit", "show_to_shopper": "on", "position": "0"},
        change_effect=_reason_labels,
    ),
    *model_pages("Stripe webhook events", "payments.stripeevent", "stripe_event", view=ORDER_READERS),
    *model_pages(
        "Alarm firings",
        "monitoring.alarmfiring",
        "alarm",
        view=ORDER_READERS,
        view_permission="orders.view_monitoring",
    ),
    *model_pages(
        "Scheduled tasks",
        "django_q.schedule",
        "schedule",
        view=ORDER_READERS,
        add=ONLY_SUPERUSER,
        change=ONLY_SUPERUSER,
        delete=ONLY_SUPERUSER,
    ),
    *model_pages(
        "Successful tasks",
        "django_q.success",
        "success",
        view=ORDER_READERS,
        change=ONLY_SUPERUSER,
        delete=ONLY_SUPERUSER,
    ),
    *model_pages(
        "Failed tasks",
        "django_q.failure",
        "failure",
        view=ORDER_READERS,
        change=ONLY_SUPERUSER,
        delete=ONLY_SUPERUSER,
    ),
    Access(
        "Failed tasks: resubmit the selected",
        "POST",
        "/admin/django_q/failure/",
        ONLY_SUPERUSER,
        ("django_q.view_failure", "django_q.change_failure"),
        lambda scene: {"action": "resubmit_task", "_selected_action": [scene["failure"]]},
        _rows_of("django_q.failure"),
    ),
    Access(
        "Successful tasks: resubmit the selected",
        "POST",
        "/admin/django_q/success/",
        ONLY_SUPERUSER,
        ("django_q.view_success", "django_q.change_success"),
        lambda scene: {"action": "resubmit_task", "_selected_action": [scene["success"]]},
        _emails_sent,  # run again at once (tasks run inline here): it emails
    ),
    *model_pages(
        "Queued tasks",
        "django_q.ormq",
        "ormq",
        view=ORDER_READERS,
        change=ONLY_SUPERUSER,
        delete=ONLY_SUPERUSER,
    ),
]

PARTNER_KEY = "/admin/partners/partnerkey/"

PARTNERS = [
    *model_pages(
        "Partner API keys",
        "partners.partnerkey",
        "partner_key",
        view=ORDER_READERS,
        add=ORDER_ACTORS,
        add_data=lambda scene: {"name": "Warehouse", "scopes": ["stock:read", "stock:write"]},
    ),
    Access(
        "Partner API keys: revoke the selected",
        "POST",
        PARTNER_KEY,
        ORDER_ACTORS,
        ("partners.view_partnerkey", "partners.revoke_partnerkey"),
        lambda scene: {"action": "revoke_selected", "_selected_action": [scene["partner_key"]]},
        _revoked_keys,
    ),
]

ACCOUNTS = [
    # Every staff write, before and after (framework/activity.py): read by the auditor, written
    # by the shop alone, changed and deleted by no one (not even the superuser).
    *model_pages("Staff activity log", "auditlog.logentry", "log_entry", view=READERS_OF_ALL),
    # Second factors (staff/two_factor.py): listed without their keys or codes; the superuser
    # deletes a lost phone's device, so its owner enrols a new one at the next login.
    *model_pages(
        "Authenticator apps (two factors)",
        "otp_totp.totpdevice",
        "totp_device",
        view=READERS_OF_ALL,
        change=ONLY_SUPERUSER,
        delete=ONLY_SUPERUSER,
    ),
    *model_pages(
        "Recovery codes (two factors)",
        "otp_static.staticdevice",
        "static_device",
        view=READERS_OF_ALL,
        change=ONLY_SUPERUSER,
        delete=ONLY_SUPERUSER,
    ),
    *model_pages(
        "Staff accounts",
        "auth.user",
        "user",
        view=READERS_OF_ALL,
        add=ONLY_SUPERUSER,
        change=ONLY_SUPERUSER,
        delete=ONLY_SUPERUSER,
        add_data=lambda scene: {
            "username": "newcomer",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
            "usable_password": "true",
        },
    ),
    Access(
        "A staff account's password page",
        "GET",
        "/admin/auth/user/{user}/password/",
        ONLY_SUPERUSER,
        ("auth.change_user",),
    ),
    Access(
        "Set a staff account's password",
        "POST",
        "/admin/auth/user/{user}/password/",
        ONLY_SUPERUSER,
        ("auth.change_user",),
        lambda scene: {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
        _password,
    ),
    *model_pages(
        "Groups (the roles)",
        "auth.group",
        "group",
        view=READERS_OF_ALL,
        add=ONLY_SUPERUSER,
        change=ONLY_SUPERUSER,
        delete=ONLY_SUPERUSER,
        add_data=lambda scene: {"name": "New group"},
        change_data=lambda scene: {"name": "Renamed group"},
        change_effect=_group_names,
    ),
    *model_pages(
        "Login attempts (axes)",
        "axes.accessattempt",
        "attempt",
        view=READERS_OF_ALL,
        change=ONLY_SUPERUSER,
        delete=ONLY_SUPERUSER,
    ),
    *model_pages(
        "Logins (axes)",
        "axes.accesslog",
        "access_log",
        view=READERS_OF_ALL,
        change=ONLY_SUPERUSER,
        delete=ONLY_SUPERUSER,
    ),
    *model_pages(
        "Failed logins (axes)",
        "axes.accessfailurelog",
        "failure_log",
        view=READERS_OF_ALL,
        change=ONLY_SUPERUSER,
        delete=ONLY_SUPERUSER,
    ),
]

MANAGE_WEBHOOKS = "webhooks.manage_webhooks"
WEBHOOK_ENDPOINT = "/admin/webhooks/webhookendpoint/"
WEBHOOK_DELIVERY = "/admin/webhooks/webhookdelivery/"
# A literal public address: saving it resolves nothing over the network (and no test sends to it).
PUBLIC_URL = "https://192.0.32.10/hooks"


def _endpoint_url(scene: dict) -> str:
    from webhooks.models import WebhookEndpoint

    return WebhookEndpoint.objects.get(pk=scene["webhook_endpoint"]).url


def _webhook_events(scene: dict) -> int:
    from webhooks.models import WebhookEvent

    return WebhookEvent.objects.count()


def _delivery_states(scene: dict) -> list:
    from webhooks.models import WebhookDelivery

    return sorted(WebhookDelivery.objects.values_list("state", flat=True))


def _endpoint_form(url: str) -> Callable[[dict], dict]:
    return lambda scene: {"url": url, "description": "warehouse", "event_types": ["order.paid"], "active": "on"}


def _endpoint_action(action: str) -> Callable[[dict], dict]:
    return lambda scene: {"action": action, "_selected_action": [scene["webhook_endpoint"]]}


WEBHOOKS = [
    app_index("webhooks", ORDER_READERS),
    *model_pages(
        "Webhook endpoints",
        "webhooks.webhookendpoint",
        "webhook_endpoint",
        view=ORDER_READERS,
        add=ORDER_ACTORS,
        change=ORDER_ACTORS,
        write_permission=MANAGE_WEBHOOKS,
        add_data=_endpoint_form(PUBLIC_URL),
        change_data=_endpoint_form(PUBLIC_URL + "/v2"),
        change_effect=_endpoint_url,
    ),
    Access(
        "Webhook endpoint's page: its signing secret",
        "GET",
        WEBHOOK_ENDPOINT + "{webhook_endpoint}/change/",
        ORDER_READERS,
        ("webhooks.view_webhookendpoint",),
        shows=("whsec_", ORDER_ACTORS),
    ),
    Access(
        "Webhook endpoints: send a test event",
        "POST",
        WEBHOOK_ENDPOINT,
        ORDER_ACTORS,
        ("webhooks.view_webhookendpoint", MANAGE_WEBHOOKS),
        _endpoint_action("send_test_event"),
        _webhook_events,
    ),
    Access(
        "Webhook endpoints: redeliver every failed event",
        "POST",
        WEBHOOK_ENDPOINT,
        ORDER_ACTORS,
        ("webhooks.view_webhookendpoint", MANAGE_WEBHOOKS),
        _endpoint_action("redeliver_failed"),
        _delivery_states,
    ),
    *model_pages("Webhook delivery log", "webhooks.webhookdelivery", "webhook_delivery", view=ORDER_READERS),
    Access(
        "Webhook delivery log: redeliver the selected",
        "POST",
        WEBHOOK_DELIVERY,
        ORDER_ACTORS,
        ("webhooks.view_webhookdelivery", MANAGE_WEBHOOKS),
        lambda scene: {"action": "redeliver_selected", "_selected_action": [scene["webhook_delivery"]]},
        _delivery_states,
    ),
]

MATRIX: list[Access] = [*HOME_AND_SITE, *STOCK, *ORDERS, *HOLDS, *RECORDS, *PARTNERS, *WEBHOOKS, *ACCOUNTS]
