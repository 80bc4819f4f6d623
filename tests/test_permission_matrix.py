"""Every stock page and action of the admin, for every role and an anonymous visitor, allowed or
refused as docs/ROLES.md (and the README) say: both read tests/support/permission_matrix.py."""

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from staff.roles import ROLES
from tests.support.admin_client import log_in
from tests.support.permission_matrix import ANONYMOUS, MATRIX, WHO, Access, build_scene, roles_document
from tests.test_import_stock import catalog_state


@pytest.fixture
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only


def request(client: Client, access: Access, scene: dict):
    path = access.path.format(**scene)
    if access.method == "GET":
        return client.get(path)
    return client.post(path, access.data(scene) if access.data else {})


@pytest.mark.parametrize("access", MATRIX, ids=[access.what for access in MATRIX])
def test_each_role_is_allowed_or_refused_as_the_matrix_says(db, fast_passwords, access):
    scene = build_scene()
    for who in WHO:
        client = Client()
        if who != ANONYMOUS:
            log_in(client, who, username=f"{who}-user")
        before = catalog_state()

        response = request(client, access, scene)

        location = response.get("Location", "")
        page = b"" if response.streaming else response.content
        said = f"{access.what} as {WHO[who]}: {response.status_code} {location}"
        if who in access.allowed:
            assert response.status_code in (200, 302), said
            assert not location.startswith("/admin/login/"), said
            assert b'class="errornote"' not in page and b'class="errorlist' not in page, said
        elif who == ANONYMOUS:
            assert response.status_code == 302 and location.startswith("/admin/login/?next="), said
            assert catalog_state() == before, said
        else:
            assert response.status_code == 403, said
            refusal = page.decode()
            if access.permission:
                assert f"You need the permission &#x27;{access.permission}&#x27; (" in refusal, said
            else:
                assert "No one can " in refusal, said
            assert catalog_state() == before, said


def test_docs_roles_md_shows_the_tables_the_tests_prove():
    document = Path(settings.BASE_DIR, "docs", "ROLES.md").read_text(encoding="utf-8")

    regenerate = ".venv/bin/python -m tests.support.permission_matrix > docs/ROLES.md"
    assert document == roles_document(), f"regenerate: {regenerate}"


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
    assert permissions_of("Refunds") - permissions_of("Order manager") == {
        "orders.refund_order",
        "payments.add_refund",
        "payments.change_refund",
    }
    assert "orders.refund_order" not in permissions_of("Order manager")
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
    assert "orders.refund_order" in permissions_of("Refunds")
