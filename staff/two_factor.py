"""Two factors for the staff who move money: a password, then a code from an authenticator app.

Who needs one: whoever may refund or cancel an order, or change what a product costs
(`MONEY_PERMISSIONS`: the Order manager and Stock clerk roles, and every superuser); an
auditor, who only reads, keeps the password alone. The devices are
django-otp's: a TOTP device (the authenticator app, RFC 6238) and a static device holding
the recovery codes, each good once. django-otp checks the codes and throttles wrong guesses;
this module says who must have them, enrols, and verifies a session
(staff/two_factor_views.py serves the pages; the admin's login form, and django-axes's
lockout of it, are unchanged).
"""

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django_otp import devices_for_user
from django_otp import login as otp_login
from django_otp import verify_token as otp_verify_token
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from framework.activity import record_staff_activity

# Holding any of these makes the second factor required: money back to a shopper, or a price
# (a stranger who sets a price to 0.01 moves money as surely as one who refunds).
MONEY_PERMISSIONS = ("orders.refund_order", "orders.cancel_order", "payments.add_refund", "inventory.change_product")
RECOVERY_CODES = 10
APP_DEVICE, RECOVERY_DEVICE = "authenticator app", "recovery codes"


def needs_second_factor(user: Any) -> bool:
    """Whether this account must pass a second factor before the back office lets it in."""
    return bool(user.is_authenticated and user.is_staff and any(user.has_perm(p) for p in MONEY_PERMISSIONS))


def is_enrolled(user) -> bool:
    """Whether the account has a confirmed authenticator app."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def enrolment_device(user) -> TOTPDevice:
    """The authenticator app being enrolled: its key is shown until a first code confirms it.

    The same unconfirmed device is returned on every visit, so reloading the page does not
    change the QR code the member of staff has just scanned.
    """
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name=APP_DEVICE, confirmed=False)


@dataclass(frozen=True)
class Enrolled:
    device: TOTPDevice
    recovery_codes: list[str]  # shown once, never again


@transaction.atomic
def confirm_enrolment(request, token: str) -> Enrolled | None:
    """Confirm the account's new authenticator app with its first code; None for a wrong code.

    On success the session counts as verified, any earlier app and recovery codes are
    replaced, `RECOVERY_CODES` new recovery codes are made, and the enrolment is on record
    in the activity log.
    """
    user = request.user
    device = enrolment_device(user)
    if not otp_verify_token(user, device.persistent_id, token.strip()):
        return None
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
    device.refresh_from_db()
    StaticDevice.objects.filter(user=user).delete()
    recovery = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=recovery, token=code) for code in codes)
    otp_login(request, device)
    record_staff_activity(
        actor=user,
        what="enrol second factor",
        target=user,
        before={"second_factor": None},
        after={"second_factor": APP_DEVICE},
        recovery_codes=RECOVERY_CODES,
    )
    return Enrolled(device=device, recovery_codes=codes)


def verify_session(request, token: str) -> bool:
    """Mark the session as having passed the second factor if `token` is a code of the
    account's app, or one of its unused recovery codes (which is then used up)."""
    token = token.strip().replace(" ", "")
    for device in devices_for_user(request.user, confirmed=True):
        verified = otp_verify_token(request.user, device.persistent_id, token)
        if verified:
            otp_login(request, verified)
            if isinstance(verified, StaticDevice):
                record_staff_activity(
                    actor=request.user,
                    what="use a recovery code",
                    target=request.user,
                    recovery_codes_left=verified.token_set.count(),
                )
            return True
    return False
