"""Staff logging into the admin the way they do: an account made by `create_staff`, the login form."""

from html.parser import HTMLParser

from django.contrib.auth import get_user_model
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from staff.services import create_staff
from staff.two_factor import needs_second_factor

PASSWORD = "correct horse battery staple"
SUPERUSER = "superuser"  # not a role: `ensure_admin`'s account
NO_ROLE = "staff"  # not a role: a staff account in no group


def make_account(role: str, username: str | None = None):
    """A staff user in `role` (a key of staff.roles.ROLES), the superuser for SUPERUSER, or a
    staff account in no group for NO_ROLE."""
    username = username or f"{role}-user"
    if role == SUPERUSER:
        return get_user_model().objects.create_superuser(username, f"{username}@shop.example", PASSWORD)
    if role == NO_ROLE:
        return get_user_model().objects.create_user(username, password=PASSWORD, is_staff=True)
    return create_staff(username, role, password=PASSWORD, email=f"{username}@shop.example").user


def log_in(client, role: str, username: str | None = None):
    """Log `client` in through the admin's login form as a new account in `role`; returns the user.

    An account that moves money (staff/two_factor.py) passes its second factor too, with an
    authenticator app enrolled for it here, as its owner would on the second factor's page."""
    user = make_account(role, username)
    response = client.post("/admin/login/?next=/admin/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302, "the login form refused the account"
    if needs_second_factor(user):
        pass_second_factor(client, authenticator_app(user))
    return user


def authenticator_app(user) -> TOTPDevice:
    """A confirmed authenticator app for `user` (what enrolling on the second factor's page leaves)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="authenticator app", confirmed=True)


def current_code(device: TOTPDevice) -> str:
    """The six digits the authenticator app shows now, computed from the device's key."""
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):0{device.digits}d}"


def pass_second_factor(client, device: TOTPDevice) -> None:
    """Give the second factor's page the app's current code, as its owner types it."""
    response = client.post("/admin/two-factor/", {"token": current_code(device), "next": "/admin/"})
    assert response.status_code == 302, "the second factor's page refused the app's code"


class FormFields(HTMLParser):
    """The values a browser would submit from an admin change form (the first Save button)."""

    SKIPPED_TYPES = {"submit", "button", "search", "reset", "image", "file"}

    def __init__(self, html: str):
        super().__init__()
        self.data: dict[str, str] = {}
        self._select: str | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name") or ""
        if "__prefix__" in name or name == "csrfmiddlewaretoken":
            return
        if tag == "input" and name and attrs.get("type", "text") not in self.SKIPPED_TYPES:
            if attrs.get("type") in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.data[name] = attrs.get("value") or "on"
            else:
                self.data[name] = attrs.get("value") or ""
        elif tag == "textarea" and name:
            self.data[name] = ""
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and ("selected" in attrs or self._select not in self.data):
            self.data[self._select] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


def open_form(client, url: str) -> dict[str, str]:
    response = client.get(url)
    assert response.status_code == 200
    return FormFields(response.content.decode()).data
