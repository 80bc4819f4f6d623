"""Who may open which admin page and run which action: the one table that docs/ROLES.md shows
(and the README copies) and tests/test_permission_matrix.py proves, request by request.

To add a page or an action: add a row to MATRIX (with `data` for a POST, and what the scene
must hold for its URL in `build_scene`), then regenerate the document:

    .venv/bin/python -m tests.support.permission_matrix > docs/ROLES.md
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass

ANONYMOUS, CLERK, MANAGER, REFUNDS, AUDITOR, SUPERUSER = (
    "anonymous",
    "clerk",
    "manager",
    "refunds",
    "auditor",
    "superuser",
)
# Columns of the table, in order, with their headings.
WHO = {
    ANONYMOUS: "Anonymous",
    CLERK: "Stock clerk",
    MANAGER: "Order manager",
    REFUNDS: "Refunds",
    AUDITOR: "Auditor",
    SUPERUSER: "Superuser",
}
STAFF = frozenset(WHO) - {ANONYMOUS}
NOBODY = frozenset()
READERS_OF_STOCK = frozenset({CLERK, MANAGER, REFUNDS, AUDITOR, SUPERUSER})
STOCK_KEEPERS = frozenset({CLERK, SUPERUSER})
ORDER_READERS = frozenset({MANAGER, REFUNDS, AUDITOR, SUPERUSER})


@dataclass(frozen=True)
class Access:
    """One request, and who gets through. Refused staff get a 403 naming `permission`;
    an anonymous visitor is sent to the login page."""

    what: str
    method: str
    path: str  # formatted with the scene: {product}, {movement}, ...
    allowed: frozenset[str]
    permission: str = ""  # what a refusal names ("" where the page names no single one)
    data: Callable[[dict], dict] | None = None  # the POST body, given the scene


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


PRODUCT = "/admin/inventory/product/"
LEDGER = "/admin/inventory/stockmovement/"

MATRIX: list[Access] = [
    Access("Admin home page", "GET", "/admin/", STAFF),
    Access(
        "Product list with stock, low-stock filter",
        "GET",
        PRODUCT + "?low_stock=yes",
        READERS_OF_STOCK,
        "inventory.view_product",
    ),
    Access("Product page", "GET", PRODUCT + "{product}/change/", READERS_OF_STOCK, "inventory.view_product"),
    Access(
        "Edit a product",
        "POST",
        PRODUCT + "{product}/change/",
        STOCK_KEEPERS,
        "inventory.change_product",
        data=_product_fields,
    ),
    Access(
        "Add a product",
        "POST",
        PRODUCT + "add/",
        STOCK_KEEPERS,
        "inventory.add_product",
        data=lambda scene: _product_fields(scene, sku=f"NEW-{uuid.uuid4().hex[:8]}"),
    ),
    Access(
        "Delete a product (take it off sale instead)",
        "POST",
        PRODUCT + "{product}/delete/",
        NOBODY,
        data=lambda scene: {"post": "yes"},
    ),
    Access("Restock form", "GET", PRODUCT + "{product}/restock/", STOCK_KEEPERS, "inventory.adjust_stock"),
    Access(
        "Restock",
        "POST",
        PRODUCT + "{product}/restock/",
        STOCK_KEEPERS,
        "inventory.adjust_stock",
        data=_stock_form("5"),
    ),
    Access(
        "Adjust stock",
        "POST",
        PRODUCT + "{product}/adjust/",
        STOCK_KEEPERS,
        "inventory.adjust_stock",
        data=_stock_form("-1"),
    ),
    Access(
        "Ledger of a product",
        "GET",
        LEDGER + "?product__id__exact={product}",
        READERS_OF_STOCK,
        "inventory.view_stockmovement",
    ),
    Access("Ledger line", "GET", LEDGER + "{movement}/change/", READERS_OF_STOCK, "inventory.view_stockmovement"),
    Access(
        "Change a ledger line", "POST", LEDGER + "{movement}/change/", NOBODY, data=lambda scene: {"quantity": "99"}
    ),
    Access("Delete a ledger line", "POST", LEDGER + "{movement}/delete/", NOBODY, data=lambda scene: {"post": "yes"}),
    Access("Import page", "GET", PRODUCT + "import/", STOCK_KEEPERS, "inventory.import_stock"),
    Access("Import preview", "POST", PRODUCT + "import/", STOCK_KEEPERS, "inventory.import_stock", data=_upload),
    Access(
        "Import",
        "POST",
        PRODUCT + "import/",
        STOCK_KEEPERS,
        "inventory.import_stock",
        data=lambda scene: {"csv_text": _stock_csv(scene), "file_name": "stock.csv", "apply": "Import"},
    ),
    Access("Export products with stock (CSV)", "GET", PRODUCT + "export/", STOCK_KEEPERS, "inventory.export_stock"),
    Access(
        "Export the ledger of a period (CSV)",
        "GET",
        LEDGER + "export/?start=2000-01-01&end=2100-01-01",
        STOCK_KEEPERS,
        "inventory.export_stock",
    ),
    Access("Order list", "GET", "/admin/orders/order/", ORDER_READERS, "orders.view_order"),
    Access("Staff accounts", "GET", "/admin/auth/user/", frozenset({AUDITOR, SUPERUSER}), "auth.view_user"),
]


def build_scene() -> dict:
    """The rows the matrix's URLs point at: a product low on stock with its ledger line."""
    from inventory.models import Product, StockMovement
    from inventory.services import adjust_stock

    product = Product.objects.create(sku="MUG-001", name="Ceramic mug", price="12.50")
    adjust_stock(product=product, delta=3, reason=StockMovement.Reason.IMPORT, note="scene")
    return {"product": product.pk, "sku": product.sku, "movement": StockMovement.objects.get(product=product).pk}


def matrix_markdown() -> str:
    """MATRIX as a Markdown table."""
    head = ["What", "Request", "Permission", *WHO.values()]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in MATRIX:
        cells = [row.what, f"`{row.method} {row.path}`", f"`{row.permission}`" if row.permission else "–"]
        cells += ["yes" if who in row.allowed else "no" for who in WHO]
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


def roles_document() -> str:
    """docs/ROLES.md, from the two tables."""
    return f"""# Staff roles and what each may do

Generated from `staff/roles.py` (the roles) and `tests/support/permission_matrix.py` (the matrix) by
`.venv/bin/python -m tests.support.permission_matrix > docs/ROLES.md`; `tests/test_permission_matrix.py`
fails when this file and the tables disagree, and proves every row of the matrix against the
running admin.

Each role is a Django group, created by the data migration `staff/0001_role_groups` and brought
back to the table after every `migrate` (a permission given to a group by hand is taken away
again: change the table instead). Staff accounts: `manage.py create_staff USERNAME --role
clerk|manager|refunds|auditor [--password P]` (without `--password` a new account gets a
generated password, printed once; running it again moves the account to the new role). The
superuser comes from `manage.py ensure_admin` and has every permission.

## Roles

{roles_markdown()}
## Who may open what

"yes": the page opens or the action runs. "no": a member of staff gets a 403 page naming the
permission that is missing (or saying that no one may do it); an anonymous visitor is sent to the
login page.

{matrix_markdown()}"""


if __name__ == "__main__":
    print(roles_document(), end="")
