"""Making staff accounts with a role."""

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.db import transaction

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
def create_staff(username: str, role_key: str, *, password: str | None = None, email: str = "") -> StaffAccount:
    """Make `username` a staff member in exactly one role, creating the user if need be.

    Idempotent: running it again with another role moves the user to that role (other,
    non-role groups are kept). A new user without a password gets a generated one; an
    existing user keeps theirs unless one is given. Raises ValidationError for a password the
    validators refuse, KeyError for an unknown role, EmailRequired for a role that receives
    alarms given to an account without an email address (an alarm would reach nobody there).
    """
    role = ROLES[role_key]
    User = get_user_model()
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
    return StaffAccount(user=user, created=created, password=password, generated=generated)
