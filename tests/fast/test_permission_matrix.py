"""Every admin address and action, for every role, a staff account in no role and an anonymous
visitor, allowed or refused as docs/ROLES.md says: both read tests/support/permission_matrix.py,
and an admin address with no row in it fails here."""

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, Permission, User
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from staff.roles import ROLES
from tests.support.fast_pipeline import use_fast_pipeline
from tests.support.matrix_scene import build_scene, tables_written
from tests.support.permission_matrix import ANONYMOUS, MATRIX, UNLISTED_ADMIN_URLS, WHO, Access
from tests.support.roles_doc import roles_document

REGENERATE = "make roles-doc"


class ModuleSettings:
    """`settings.NAME = value` until `finalize()`: pytest-django's `settings`, for a wider scope."""

    def __init__(self):
        self._overrides: list[override_settings] = []

    def __setattr__(self, name, value):
        if name.startswith("_"):
            return super().__setattr__(name, value)
        override = override_settings(**{name: value})
        override.enable()
        self._overrides.append(override)

    def __getattr__(self, name):
        return getattr(settings, name)

    def finalize(self):
        for override in reversed(self._overrides):
            override.disable()


@pytest.fixture(scope="class")
def scene(django_db_setup, django_db_blocker, tmp_path_factory):
    """One scene for every case, built once in a transaction that is rolled back at the end;
    each case runs in a savepoint of it (the `db` fixture), so each starts from the same rows."""
    with django_db_blocker.unblock(), pytest.MonkeyPatch.context() as monkeypatch:
        wrapper = ModuleSettings()
        try:
            use_fast_pipeline(wrapper, monkeypatch, tmp_path_factory.mktemp("matrix"))
            wrapper.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only
            wrapper.ORDER_STUCK_AFTER_SECONDS = 0  # the stuck order is overdue at once: its step can be retried
            with transaction.atomic():
                yield build_scene()
                transaction.set_rollback(True)
        finally:
            wrapper.finalize()


def request(client: Client, access: Access, keys: dict):
    path = access.path.format(**keys)
    if access.method == "GET":
        return client.get(path)
    return client.post(path, access.data(keys) if access.data else {})


def names_permission(page: str, permission: str) -> bool:
    """Whether the refusal page (one 403 page for every refusal) names the permission."""
    return f"You need the permission &#x27;{permission}&#x27; (" in page


class TestTheMatrix:
    """Every row, for every column: one scene for the class (see `scene`), each request in a
    savepoint of its own, so each starts from the same rows."""

    @pytest.mark.parametrize("access", MATRIX, ids=[access.what for access in MATRIX])
    def test_each_role_is_allowed_or_refused_as_the_matrix_says(self, scene, db, access):
        problems = []
        for who in WHO:
            with transaction.atomic():
                problems += outcome_problems(scene, access, who)
                transaction.set_rollback(True)

        assert not problems, "\n".join(problems)


def outcome_problems(scene, access: Access, who: str) -> list[str]:
    """What differs from the matrix when `who` makes the row's request (nothing, when it holds)."""
    client = Client()
    if who != ANONYMOUS:
        client.cookies[settings.SESSION_COOKIE_NAME] = scene.sessions[who]
    keys = scene.keys
    effect_before = access.effect(keys) if access.effect else None

    with CaptureQueriesContext(connection) as queries:
        response = request(client, access, keys)

    written = tables_written([query["sql"] for query in queries.captured_queries])
    location = response.get("Location", "")
    page = "" if response.streaming else response.content.decode(errors="replace")
    said = f"{WHO[who]}: {response.status_code} {location}"
    if who in access.allowed:
        problems = []
        if response.status_code not in access.allowed_status or location.startswith("/admin/login/"):
            problems.append(f"{said}: not let through")
        if 'class="errornote"' in page or 'class="errorlist' in page:
            problems.append(f"{said}: the page shows an error")
        if access.shows and (access.shows[0] in page) != (who in access.shows[1]):
            problems.append(f"{said}: {access.shows[0]!r} {'shown' if access.shows[0] in page else 'not shown'}")
        if access.effect and access.effect(keys) == effect_before:
            problems.append(f"{said}: it did nothing")
        if not access.effect and written:
            problems.append(f"{said}: it wrote {written}")
        return problems
    if who == ANONYMOUS:
        if response.status_code != 302 or not location.startswith("/admin/login/?next="):
            return [f"{said}: not sent to the login page"]
    elif response.status_code != access.refused:
        return [f"{said}: expected {access.refused}"]
    elif access.refused == 403:
        user = User.objects.get(username=f"{who}-user")
        lacking = [permission for permission in access.permissions if not user.has_perm(permission)]
        if lacking and not names_permission(page, lacking[0]):
            return [f"{said}: the refusal does not name {lacking[0]}"]
        if not lacking and (access.refusal or "No one can ") not in page:
            return [f"{said}: the refusal does not say {access.refusal or 'No one can'}"]
    return [f"{said}: a refused request wrote {written}"] if written else []


def admin_urls(patterns=None, prefix: str = "", namespace: str = ""):
    """(route, name) of every address under /admin/ the URL resolver answers."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = URLResolver._join_route(prefix, str(pattern.pattern))  # as ResolverMatch.route joins them
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}:{pattern.namespace}".strip(":") if pattern.namespace else namespace
            yield from admin_urls(pattern.url_patterns, route, inner)
        elif isinstance(pattern, URLPattern) and route.lstrip("^").startswith("admin/"):
            yield route, f"{namespace}:{pattern.name or ''}".strip(":")


def test_every_admin_address_has_a_row_in_the_matrix():
    rows_by_route: dict[str, list[str]] = {}
    for access in MATRIX:
        path = access.path.format_map(KeyNames()).split("?")[0]
        match = resolve(path)
        rows_by_route.setdefault(match.route, []).append(access.what)

    missing = [
        f"{name or '(no name)'}: /{route}"
        for route, name in admin_urls()
        if name not in UNLISTED_ADMIN_URLS and route not in rows_by_route
    ]

    assert not missing, "admin addresses with no row in tests/support/permission_matrix.py:\n" + "\n".join(missing)
    assert len({access.what for access in MATRIX}) == len(MATRIX), "two rows with one name"


class KeyNames(dict):
    """Fills a row's path with a stand-in id, to resolve it without a scene."""

    def __missing__(self, key):
        return "1"


def test_docs_roles_md_shows_the_tables_the_tests_prove():
    document = Path(settings.BASE_DIR, "docs", "ROLES.md").read_text(encoding="utf-8")

    assert document == roles_document(), f"regenerate: {REGENERATE}"


def permissions_of(group: str) -> set[str]:
    return {
        f"{app}.{codename}"
        for app, codename in Group.objects.get(name=group).permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


def test_each_group_holds_exactly_its_roles_permissions(db):
    every_view = {
        f"{app}.{codename}"
        for app, codename in Permission.objects.filter(codename__startswith="view_").values_list(
            "content_type__app_label", "codename"
        )
    }

    for role in ROLES.values():
        expected = set(role.all_permissions) | (every_view if role.every_view_permission else set())
        assert permissions_of(role.group) == expected, role.group
    assert {"orders.refund_order", "payments.add_refund", "orders.cancel_order"} <= permissions_of("Order manager")
    assert "orders.view_monitoring" in permissions_of("Order manager")
    assert not {p for p in permissions_of("Auditor") if not p.split(".")[1].startswith("view_")}
    assert not permissions_of("Stock clerk") & {p for p in every_view if p.startswith("orders.")}


def test_the_migration_makes_the_groups_on_a_fresh_database_before_django_makes_its_permissions(transactional_db):
    executor = MigrationExecutor(connection)
    executor.migrate([("staff", None)])
    assert not Group.objects.filter(name__in=[role.group for role in ROLES.values()]).exists()
    # A fresh database has no permissions yet while migrations run: Django adds them after migrate.
    Permission.objects.filter(content_type__app_label__in=["orders", "inventory"]).delete()

    executor.loader.build_graph()
    executor.migrate([("staff", "0001_role_groups")])

    assert "inventory.adjust_stock" in permissions_of("Stock clerk")
    assert "orders.view_monitoring" in permissions_of("Order manager")
    assert "orders.refund_order" in permissions_of("Order manager")


def test_members_of_the_old_refunds_role_become_order_managers_who_refund(transactional_db):
    executor = MigrationExecutor(connection)
    executor.migrate([("staff", "0001_role_groups")])
    lee = User.objects.create_user("lee", is_staff=True)
    lee.groups.add(Group.objects.create(name="Refunds"))

    executor.loader.build_graph()
    executor.migrate([("staff", "0002_order_managers_refund")])

    assert not Group.objects.filter(name="Refunds").exists()
    lee = User.objects.get(username="lee")
    assert list(lee.groups.values_list("name", flat=True)) == ["Order manager"]
    assert lee.has_perm("orders.refund_order") and lee.has_perm("orders.cancel_order")
