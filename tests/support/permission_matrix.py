"""Who may open which admin page and run which action: the one table that docs/ROLES.md and the
README show and tests/test_permission_matrix.py proves, request by request, role by role.

Every address the admin answers has a row (the test fails on one without); a POST that does
something names its `effect`, which must change for who is allowed and, like everything else
(`books`), stay the same for who is refused. To add a page or an action: add a row to MATRIX
(what the scene must hold for its URL goes in `build_scene`), then regenerate the documents:

    .venv/bin/python -m tests.support.permission_matrix
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

ANONYMOUS, CLERK, MANAGER, REFUNDS, AUDITOR, NO_ROLE, SUPERUSER = (
    "anonymous",
    "clerk",
    "manager",
    "refunds",
    "auditor",
    "staff",
    "superuser",
)
# Columns of the table, in order, with their headings.
WHO = {
    ANONYMOUS: "Anonymous",
    CLERK: "Stock clerk",
    MANAGER: "Order manager",
    REFUNDS: "Refunds",
    AUDITOR: "Auditor",
    NO_ROLE: "Staff, no role",
    SUPERUSER: "Superuser",
}
STAFF = frozenset(WHO) - {ANONYMOUS}
NOBODY = frozenset()
ONLY_SUPERUSER = frozenset({SUPERUSER})
READERS_OF_STOCK = frozenset({CLERK, MANAGER, REFUNDS, AUDITOR, SUPERUSER})
STOCK_KEEPERS = frozenset({CLERK, SUPERUSER})
ORDER_READERS = frozenset({MANAGER, REFUNDS, AUDITOR, SUPERUSER})
ORDER_ACTORS = frozenset({MANAGER, REFUNDS, SUPERUSER})
REFUNDERS = frozenset({REFUNDS, SUPERUSER})
READERS_OF_ALL = frozenset({AUDITOR, SUPERUSER})  # accounts, login attempts: no role's job but the auditor's

# Django's own pages every account uses on itself, for a reason other than a role: the matrix leaves them out.
UNLISTED_ADMIN_URLS = {
    "admin:login": "the login form: open to everyone, it is how anyone gets in",
    "admin:logout": "logging out: open to everyone logged in",
    "admin:password_change": "changing one's own password: every account may",
    "admin:password_change_done": "the page after changing one's own password",
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
    from tests.test_import_stock import catalog_state

    return catalog_state()


def _reason(scene: dict) -> dict:
    return {"reason": "matrix", "action_token": uuid.uuid4().hex}


def _refund_form(scene: dict) -> dict:
    return {**_reason(scene), "amount": "1.00", f"return_{scene['product']}": "0"}


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


def _emails_sent(scene: dict) -> int:
    from django.core import mail

    return len(mail.outbox)


def _group_names(scene: dict) -> list:
    from django.contrib.auth.models import Group

    return sorted(Group.objects.values_list("name", flat=True))


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
    add_data: Callable[[dict], dict] | None = None,
    change_data: Callable[[dict], dict] | None = None,
    change_effect: Callable[[dict], object] | None = None,
) -> list[Access]:
    """The admin's own pages of one model: list, row, history, short address, add, change, delete.

    `add`, `change`, `delete` say who may; a POST is listed where it can be made (a body for who
    may add or change, or no one may). Who may not gets a 403 naming the permission, or saying no
    one can where no one may.
    """
    app_label, model_name = model.split(".")
    base = f"/admin/{app_label}/{model_name}/"
    row = base + "{" + key + "}/"

    def needs(action: str, who: frozenset[str]) -> tuple[str, ...]:
        if action == "view" and view_permission:
            return (view_permission,)
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
    app_index("auth", READERS_OF_ALL),
    app_index("axes", READERS_OF_ALL),
    app_index("django_q", ORDER_READERS),
    app_index("inventory", READERS_OF_STOCK),
    app_index("orders", ORDER_READERS),
    app_index("payments", ORDER_READERS),
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
        "resend", "completed", "orders.resend_order_email", ORDER_ACTORS, _events("completed", "email_resent")
    ),
    *order_action(
        "regenerate", "stuck", "orders.regenerate_receipt", ORDER_ACTORS, _events("stuck", "receipt_regenerated")
    ),
    *order_action("cancel", "stuck", "orders.cancel_order", ORDER_ACTORS, _state("stuck")),
    *order_action("refund", "completed", "orders.refund_order", REFUNDERS, _refunds),
    *order_action(
        "refund",
        "completed",
        "orders.refund_order",
        REFUNDERS,
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

RECORDS = [
    *model_pages("Payments", "payments.payment", "payment", view=ORDER_READERS),
    *model_pages("Refunds", "payments.refund", "refund", view=ORDER_READERS),
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

ACCOUNTS = [
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

MATRIX: list[Access] = [*HOME_AND_SITE, *STOCK, *ORDERS, *RECORDS, *ACCOUNTS]


# --- the scene the URLs point at -------------------------------------------------------------


@dataclass
class Scene:
    """The rows the matrix's URLs point at, and an account per column."""

    keys: dict = field(default_factory=dict)
    sessions: dict = field(default_factory=dict)  # who -> the session key of their account


def _place(api, payment_method: str, email: str) -> int:
    from orders.models import Order

    body = {"email": email, "lines": [{"sku": "MUG-001", "quantity": 1}], "payment_method": payment_method}
    response = api.post("/api/orders/", body, format="json")
    assert response.status_code == 202, response.content
    return Order.objects.get(reference=response.json()["reference"]).pk


def build_scene() -> Scene:
    """Orders in the states the actions need, placed the way a shopper does with the pipeline
    run by hand (a FAILED one to redrive, a COMPLETED one with its receipt to refund and
    resend, a CONFIRMED one stuck without its receipt to retry, regenerate and cancel), a
    product with its ledger, a row of each other model the admin lists, an account per role.

    Runs inside a transaction of the caller's; the on-commit callbacks (the pipeline's tasks)
    run or are dropped here by hand, since that transaction never commits.
    """
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django.contrib.auth.models import Group, User
    from django.contrib.contenttypes.models import ContentType
    from django.test import TestCase
    from django.utils import timezone
    from django_q.models import OrmQ, Schedule, Task
    from django_q.signing import SignedPackage
    from rest_framework.test import APIClient

    from inventory.models import Product, Stock, StockMovement
    from inventory.services import adjust_stock
    from monitoring.models import AlarmFiring
    from orders import manager_actions
    from orders.models import Order
    from orders.pipeline import run_step
    from payments.models import Payment, Refund, StripeEvent
    from tests.support.admin_client import make_account

    run_tasks = TestCase.captureOnCommitCallbacks
    api = APIClient()
    product = Product.objects.create(sku="MUG-001", name="Ceramic mug", price="12.50")
    Stock.objects.create(product=product)
    adjust_stock(product=product, delta=10, reason=StockMovement.Reason.IMPORT, note="scene")
    with run_tasks(execute=True):
        completed = _place(api, "pm_card_visa", "done@example.com")
    with run_tasks(execute=True):
        failed = _place(api, "pm_sim_unavailable", "failed@example.com")
    with run_tasks(execute=False):  # its tasks are dropped: the order waits where the steps leave it
        stuck = _place(api, "pm_card_visa", "stuck@example.com")
    for step in ("process_payment", "update_inventory"):
        with run_tasks(execute=False):
            run_step(stuck, step)
    with run_tasks(execute=True):
        manager_actions.refund_order(
            Order.objects.get(pk=completed), manager="scene", reason="a chipped mug", amount=Decimal("1.00")
        )
    states = dict(Order.objects.filter(pk__in=[completed, failed, stuck]).values_list("pk", "state"))
    assert [states[completed], states[failed], states[stuck]] == ["COMPLETED", "FAILED", "CONFIRMED"], states

    now = timezone.now()
    # A task whose run shows: it emails (successes are not stored here, Q_SAVE_LIMIT=-1).
    mail = ("Matrix", "A task run again.", "shop@example.com", ["ops@example.com"])
    task = {"func": "django.core.mail.send_mail", "args": mail, "kwargs": {}, "started": now, "stopped": now}
    success = Task.objects.create(id=uuid.uuid4().hex, name="matrix-ok", success=True, result=1, **task)
    failure = Task.objects.create(id=uuid.uuid4().hex, name="matrix-failed", success=False, result="boom", **task)
    queued = OrmQ.objects.create(
        key="default", payload=SignedPackage.dumps({"id": uuid.uuid4().hex, "name": "matrix-queued", **task})
    )
    visitor = {"user_agent": "matrix", "ip_address": "127.0.0.1", "username": "someone", "http_accept": "*/*"}
    keys = {
        "product": product.pk,
        "sku": product.sku,
        "movement": StockMovement.objects.filter(product=product).order_by("id").first().pk,
        "completed": completed,
        "failed": failed,
        "stuck": stuck,
        "order_type": ContentType.objects.get_for_model(Order).pk,
        "payment": Payment.objects.get(order_id=completed).pk,
        "refund": Refund.objects.get(order_id=completed).pk,
        "stripe_event": StripeEvent.objects.create(event_id="evt_matrix", type="charge.refunded", payload={}).pk,
        "alarm": AlarmFiring.objects.create(rule="failed_orders", started_at=now, last_seen_at=now, summary="x").pk,
        "schedule": Schedule.objects.create(name="matrix", func="math.floor", schedule_type=Schedule.DAILY).pk,
        "success": success.pk,
        "failure": failure.pk,
        "ormq": queued.pk,
        "attempt": AccessAttempt.objects.create(
            **visitor, path_info="/admin/login/", get_data="", post_data="", failures_since_start=1
        ).pk,
        "access_log": AccessLog.objects.create(**visitor, path_info="/admin/login/").pk,
        "failure_log": AccessFailureLog.objects.create(**visitor, path_info="/admin/login/").pk,
        "group": Group.objects.create(name="Scratch").pk,
        "user": User.objects.create_user("scratch", password="not used").pk,
    }
    return Scene(keys, {who: _session_of(make_account(who)) for who in STAFF})


def _session_of(user) -> str:
    """A logged-in session for the account, made once: each case sends its cookie."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client.cookies[settings.SESSION_COOKIE_NAME].value


# Tables a request may write without doing anything: the session, the admin's log of its own changes.
BOOKKEEPING_TABLES = ("django_session", "django_admin_log")


def tables_written(statements: list[str]) -> list[str]:
    """The tables these SQL statements write, but for the bookkeeping ones."""
    written = []
    for sql in statements:
        words = sql.replace('"', " ").split()
        verb = words[0].upper() if words else ""
        if verb in ("INSERT", "UPDATE", "DELETE"):
            table = words[2] if verb in ("INSERT", "DELETE") else words[1]
            if table not in BOOKKEEPING_TABLES:
                written.append(f"{verb} {table}")
    return written


# --- the documents -----------------------------------------------------------------------------


def _cell(row: Access, who: str) -> str:
    if who in row.allowed:
        return "yes"
    if who == ANONYMOUS:
        return "login"
    return "no" if row.refused == 403 else str(row.refused)


def matrix_markdown() -> str:
    """MATRIX as a Markdown table."""
    head = ["What", "Request", "Needs", *WHO.values()]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in MATRIX:
        needs = ", ".join(f"`{permission}`" for permission in row.permissions) or "–"
        cells = [row.what, f"`{row.method} {row.path}`", needs, *(_cell(row, who) for who in WHO)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def roles_markdown() -> str:
    """staff.roles.ROLES as a Markdown table."""
    from staff.roles import ROLES

    lines = ["| Group | `create_staff --role` | Does | Permissions |", "|---|---|---|---|"]
    for role in ROLES.values():
        permissions = ", ".join(f"`{name}`" for name in role.permissions)
        if role.extends:
            permissions = f"all of {role.extends.group}'s, and {permissions}"
        if role.every_view_permission:
            permissions = "every `view_` permission of every app" + (f", {permissions}" if permissions else "")
        lines.append(f"| {role.group} | `{role.key}` | {role.does} | {permissions} |")
    return "\n".join(lines) + "\n"


def _unlisted_markdown() -> str:
    return "".join(f"- `{name}`: {why}\n" for name, why in UNLISTED_ADMIN_URLS.items())


MATRIX_LEGEND = """"yes": the page opens or the action runs (and does what it says). "no": a member of staff gets
a 403 page naming the permission that is missing, the first of "Needs" they lack (or saying that
no one may do it); "404": the admin answers as if the page did not exist; "login": an anonymous
visitor is sent to the login page. Every address the admin answers has a row, but for Django's
pages every account uses on itself:
"""


def roles_document() -> str:
    """docs/ROLES.md, from the two tables."""
    return f"""# Staff roles and what each may do

Generated from `staff/roles.py` (the roles) and `tests/support/permission_matrix.py` (the matrix) by
`.venv/bin/python -m tests.support.permission_matrix`, which writes this file and the table in the
README; `tests/test_permission_matrix.py` fails when they and the tables disagree, proves every row
of the matrix against the running admin, and fails on an admin address with no row.

Each role is a Django group, created by the data migration `staff/0001_role_groups` and brought
back to the table after every `migrate` (a permission given to a group by hand is taken away
again: change the table instead). Staff accounts: `manage.py create_staff USERNAME --role
clerk|manager|refunds|auditor [--password P]` (without `--password` a new account gets a
generated password, printed once; running it again moves the account to the new role). The
superuser comes from `manage.py ensure_admin` and has every permission.

## Roles

{roles_markdown()}
## Who may open what

{MATRIX_LEGEND}
{_unlisted_markdown()}
{matrix_markdown()}"""


README_START = "<!-- roles: generated by `.venv/bin/python -m tests.support.permission_matrix` -->\n"
README_END = "<!-- end of roles -->\n"


def readme_roles() -> str:
    """The README's part between the markers: the roles, and who may open what."""
    return f"{README_START}{roles_markdown()}\n{MATRIX_LEGEND}\n{_unlisted_markdown()}\n{matrix_markdown()}{README_END}"


def readme_with_roles(readme: str) -> str:
    """The README with its generated part replaced by the tables as they are now."""
    start, end = readme.index(README_START), readme.index(README_END) + len(README_END)
    return readme[:start] + readme_roles() + readme[end:]


def write_documents(base: Path) -> None:
    """Write docs/ROLES.md and the README's tables from the code."""
    (base / "docs" / "ROLES.md").write_text(roles_document(), encoding="utf-8")
    readme = base / "README.md"
    readme.write_text(readme_with_roles(readme.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    write_documents(Path(__file__).resolve().parents[2])
