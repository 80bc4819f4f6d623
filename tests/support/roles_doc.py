"""docs/ROLES.md, written from the code: the roles
(`staff/roles.py`) and the permission matrix (`tests/support/permission_matrix.py`).

Run by `make roles-doc`; tests/fast/test_permission_matrix.py fails while the files differ from it.
"""

from pathlib import Path

from tests.support.permission_matrix import ANONYMOUS, MATRIX, UNLISTED_ADMIN_URLS, WHO, Access


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
`make roles-doc` (`tests/support/roles_doc.py`), which writes this file;
`tests/fast/test_permission_matrix.py` fails when it and the tables disagree, proves every row
of the matrix against the running admin, and fails on an admin address with no row.

Each role is a Django group, created by the data migration `staff/0001_role_groups` and brought
back to the table after every `migrate` (a permission given to a group by hand is taken away
again: change the table instead). Staff accounts: `manage.py create_staff USERNAME --role
clerk|manager|auditor [--password P]` (without `--password` a new account gets a
generated password, printed once; running it again moves the account to the new role). The
superuser comes from `manage.py ensure_admin` and has every permission.

## Roles

{roles_markdown()}
### Why order managers refund

An order manager answers the shopper, and refunds what is due: 12.50 of a 40.00 order for a
chipped mug, without handing the order to someone else. They may cancel a paid order, which
returns its whole amount, so a refund they could not make protected no money; it only pushed
them to cancel where a part was due. Until `staff/0002_order_managers_refund` a separate
Refunds role (an order manager who may also refund) held this; that migration moved its
members to Order manager and removed it. What keeps refunds honest is the record, not the
role: every refund names the manager, a reason and the amount in the order's history, goes to
the provider under one idempotency key, and the reconciler and `audit_invariants` check the
money against the provider.
## Who may open what

{MATRIX_LEGEND}
{_unlisted_markdown()}
{matrix_markdown()}"""


def write_documents(base: Path) -> None:
    """Write docs/ROLES.md from the code."""
    (base / "docs" / "ROLES.md").write_text(roles_document(), encoding="utf-8")


if __name__ == "__main__":
    write_documents(Path(__file__).resolve().parents[2])
