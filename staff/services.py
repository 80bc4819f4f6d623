"""Making staff accounts with a role."""

import secrets
from dataclasses import dataclass

from auditlog.context import disable_auditlog
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from framework.activity import CHANGE, CREATE, record_staff_activity
from staff.roles import ROLE_GROUPS, ROLES


class EmailRequired(ValueError):
    """The role receives alarms, and the account has no address to send them to."""


@dataclass(frozen=True)
class StaffAccount:
    user: object
    created: bool
    password: str | None  # the password set now (None: an existing user's password was kept)
    generated: bool  # whether `password` was made up here and must be handed over


@transaction.atomic
def create_staff(
    username: str, role_key: str, *, password: str | None = None, email: str = "", via: str = ""
) -> StaffAccount:
    """Make `username` a staff member in exactly one role, creating the user if need be.

    Idempotent: running it again with another role moves the user to that role (other,
    non-role groups are kept). A new user without a password gets a generated one; an
    existing user keeps theirs unless one is given. Raises ValidationError for a password the
    validators refuse, KeyError for an unknown role, EmailRequired for a role that receives
    alarms given to an account without an email address (an alarm would reach nobody there).
    The change is one entry of the staff activity log, naming `via` (the command) as its author.
    """
    with disable_auditlog():  # one entry below, with the role, rather than one per row written
        return _create_staff(username, role_key, password=password, email=email, via=via)


def _create_staff(username: str, role_key: str, *, password: str | None, email: str, via: str) -> StaffAccount:
    role = ROLES[role_key]
    User = get_user_model()
    existing = User.objects.filter(username=username).first()
    before = _account_facts(existing) if existing else {}
    user, created = User.objects.get_or_create(username=username, defaults={"email": email})
    if role.receives_alarms and not (email or user.email):
        raise EmailRequired(f"The {role.group} role is emailed about alarms: give {username!r} an email address.")
    generated = created and password is None
    if generated:
        password = secrets.token_urlsafe(12)
    if password is not None:
        validate_password(password, user)
        user.set_password(password)
    user.is_staff = True
    if email:
        user.email = email
    user.save()
    user.groups.remove(*user.groups.filter(name__in=ROLE_GROUPS))
    user.groups.add(Group.objects.get(name=role.group))
    record_staff_activity(
        actor=None,
        via=via or "staff.services.create_staff",
        what="create staff account" if created else "change staff account",
        action=CREATE if created else CHANGE,
        target=user,
        before=before,
        after={**_account_facts(user), **({"password": "set"} if password is not None else {})},
    )
    return StaffAccount(user=user, created=created, password=password, generated=generated)


def _account_facts(user) -> dict:
    """What the activity log keeps of an account: its address, whether staff, its roles."""
    return {
        "email": user.email,
        "is_staff": user.is_staff,
        "roles": sorted(user.groups.filter(name__in=ROLE_GROUPS).values_list("name", flat=True)),
    }
