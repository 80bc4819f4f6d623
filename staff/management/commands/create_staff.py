from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from staff.roles import ROLES
from staff.services import EmailRequired, create_staff
from staff.two_factor import is_enrolled, needs_second_factor


class Command(BaseCommand):
    help = "Create a staff user in one role (or move an existing one to it). The superuser: ensure_admin."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--role",
            required=True,
            choices=list(ROLES),
            help="; ".join(f"{key}: {role.group}" for key, role in ROLES.items()),
        )
        parser.add_argument("--password", help="Without it a new user gets a generated password, printed once.")
        alarmed = ", ".join(key for key, role in ROLES.items() if role.receives_alarms)
        parser.add_argument("--email", default="", help=f"Required for the roles emailed about alarms: {alarmed}.")

    def handle(self, *args, username: str, role: str, password: str | None, email: str, **options):
        try:
            account = create_staff(username, role, password=password, email=email, via="manage.py create_staff")
        except ValidationError as error:
            raise CommandError(f"Password refused: {' '.join(error.messages)}") from error
        except EmailRequired as error:
            raise CommandError(f"{error} (--email).") from error
        group = ROLES[role].group
        if account.generated:
            said = f"with password {account.password}"
        elif account.password is not None:
            said = "with the given password"
        else:
            said = "password unchanged"
        verb = "Created" if account.created else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{verb} staff user {username!r} as {group!r}, {said}."))
        if needs_second_factor(account.user) and not is_enrolled(account.user):
            link = settings.PUBLIC_BASE_URL + reverse("two_factor")
            self.stdout.write(
                f"The {group} role moves money: on first login {username!r} sets up an authenticator app "
                f"and gets recovery codes at {link}"
            )
