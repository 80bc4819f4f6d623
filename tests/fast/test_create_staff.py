"""`manage.py create_staff USERNAME --role ...` makes the staff accounts; `ensure_admin` the superuser."""

import re
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import RequestFactory


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only


def login_request():
    """A login request: django-axes checks who is logging in, and from where."""
    return RequestFactory().post("/admin/login/")


def create_staff(*args: str) -> str:
    out = StringIO()
    call_command("create_staff", *args, stdout=out)
    return out.getvalue()


def roles_of(username: str) -> list[str]:
    return sorted(get_user_model().objects.get(username=username).groups.values_list("name", flat=True))


def test_a_clerk_is_made_staff_in_the_stock_clerk_group_with_the_given_password(db):
    output = create_staff("kim", "--role", "clerk", "--password", "a long enough password")

    assert "Created staff user 'kim' as 'Stock clerk', with the given password." in output
    kim = authenticate(login_request(), username="kim", password="a long enough password")
    assert (kim.is_staff, kim.is_superuser) == (True, False)
    assert roles_of("kim") == ["Stock clerk"]
    assert kim.has_perm("inventory.adjust_stock") and not kim.has_perm("orders.view_order")


def test_without_a_password_one_is_generated_printed_once_and_works(db):
    output = create_staff("lee", "--role", "manager", "--email", "lee@shop.example")

    password = re.search(r"with password (\S+)\.$", output.strip().splitlines()[0]).group(1)
    assert len(password) >= 12
    assert authenticate(login_request(), username="lee", password=password) is not None
    assert roles_of("lee") == ["Order manager"]


def test_running_it_again_moves_the_user_to_the_new_role_and_keeps_the_password_and_other_groups(db):
    create_staff("lee", "--role", "manager", "--password", "a long enough password", "--email", "lee@shop.example")
    get_user_model().objects.get(username="lee").groups.add(Group.objects.create(name="Night shift"))

    output = create_staff("lee", "--role", "auditor")

    assert "Updated staff user 'lee' as 'Auditor', password unchanged." in output
    assert roles_of("lee") == ["Auditor", "Night shift"]
    assert authenticate(login_request(), username="lee", password="a long enough password") is not None
    assert get_user_model().objects.filter(username="lee").count() == 1


def test_a_password_the_validators_refuse_creates_nobody(db):
    with pytest.raises(CommandError, match="Password refused: This password is too short"):
        create_staff("kim", "--role", "auditor", "--password", "short")

    assert not get_user_model().objects.filter(username="kim").exists()


def test_a_role_that_is_emailed_about_alarms_needs_an_email_address_and_creates_nobody_without(db):
    with pytest.raises(CommandError, match="role is emailed about alarms: give 'lee' an email address. \\(--email\\)"):
        create_staff("lee", "--role", "manager", "--password", "a long enough password")

    assert not get_user_model().objects.filter(username="lee").exists()


def test_an_existing_user_with_an_address_moves_to_a_role_emailed_about_alarms_without_giving_it_again(db):
    create_staff("lee", "--role", "clerk", "--password", "a long enough password", "--email", "lee@shop.example")

    create_staff("lee", "--role", "manager")

    assert roles_of("lee") == ["Order manager"]
    assert get_user_model().objects.get(username="lee").has_perm("monitoring.receive_alarms")


def test_an_unknown_role_is_refused_naming_the_roles(db):
    with pytest.raises(CommandError, match="invalid choice: 'boss' \\(choose from '?clerk'?, '?manager'?"):
        create_staff("kim", "--role", "boss")


def test_ensure_admin_still_makes_the_superuser_in_no_role(db, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a long enough password")

    call_command("ensure_admin", stdout=StringIO())

    root = authenticate(login_request(), username="root", password="a long enough password")
    assert root.is_superuser and root.is_staff
    assert roles_of("root") == []


def ensure_admin() -> str:
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


def test_ensure_admin_takes_the_admins_address_from_the_environment_and_says_alarms_go_there(db, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "owner@shop.example")

    output = ensure_admin()

    assert get_user_model().objects.get(username="admin").email == "owner@shop.example"
    assert "Alarms are emailed to owner@shop.example." in output


def test_ensure_admin_at_a_terminal_asks_for_the_address_until_it_is_one(db, monkeypatch):
    monkeypatch.delenv("DJANGO_SUPERUSER_EMAIL", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    answers = iter(["owner at shop", "owner@shop.example"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))

    ensure_admin()

    assert get_user_model().objects.get(username="admin").email == "owner@shop.example"


def test_ensure_admin_without_a_terminal_or_an_address_says_alarms_reach_nobody(db, monkeypatch):
    monkeypatch.delenv("DJANGO_SUPERUSER_EMAIL", raising=False)

    output = ensure_admin()

    assert get_user_model().objects.get(username="admin").email == ""
    assert "until one of them has one, alarms reach nobody" in output
    assert "alarms reach nobody" in ensure_admin()  # and at every `make run` until it has one
