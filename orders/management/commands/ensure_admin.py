import os
import secrets
import sys

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand
from django.core.validators import validate_email

NO_ADDRESS = (
    "Admin user {username!r} has no email address: alarms email every superuser and order manager "
    "with an address and ALARM_EMAILS, so until one of them has one, alarms reach nobody. "
    "Set DJANGO_SUPERUSER_EMAIL, or give the admin an address in the admin's Users page."
)


class Command(BaseCommand):
    help = (
        "Create the admin user once, from DJANGO_SUPERUSER_USERNAME/PASSWORD/EMAIL or with a printed "
        "password; at a terminal it asks for the admin's email address, which alarms are sent to."
    )

    def handle(self, *args, **options):
        User = get_user_model()
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "admin")
        admin = User.objects.filter(username=username).first()
        if admin is not None:
            self.stdout.write(f"Admin user {username!r} exists.")
            if not admin.email:
                self.stdout.write(self.style.WARNING(NO_ADDRESS.format(username=username)))
            return
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL") or (self._ask_email(username) if sys.stdin.isatty() else "")
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email=email, password=password)
        shown = password if "DJANGO_SUPERUSER_PASSWORD" not in os.environ else "(from DJANGO_SUPERUSER_PASSWORD)"
        self.stdout.write(self.style.SUCCESS(f"Created admin user {username!r} with password {shown}"))
        if email:
            self.stdout.write(f"Alarms are emailed to {email}.")
        else:
            self.stdout.write(self.style.WARNING(NO_ADDRESS.format(username=username)))

    def _ask_email(self, username: str) -> str:
        """Ask at the terminal until the answer is an address or empty (no address)."""
        while True:
            answer = input(f"Email address of admin user {username!r}, where alarms are sent (Enter: none): ").strip()
            try:
                if answer:
                    validate_email(answer)
            except ValidationError:
                self.stderr.write(f"{answer!r} is not an email address.")
                continue
            return answer
