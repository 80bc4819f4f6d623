"""Third-party admin pages made to follow the roles: a list action that writes needs a write
permission (Django offers an action without `permissions` to whoever may see the list, so an
Auditor or an Order manager could resubmit tasks), and a refused one names it."""

from axes import admin as axes_admin
from axes.models import AccessAttempt
from django.contrib import admin
from django_otp.plugins.otp_static.admin import StaticDeviceAdmin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_q import admin as django_q_admin
from django_q.models import Failure, Success

from framework.permissions import NamedActionRefusals


@admin.action(description=django_q_admin.resubmit_task.short_description, permissions=["change"])
def resubmit_task(model_admin, request, queryset):
    """django_q's resubmit, for who may change the tasks (a failed one is deleted once resubmitted)."""
    django_q_admin.resubmit_task(model_admin, request, queryset)


class SuccessAdmin(NamedActionRefusals, django_q_admin.TaskAdmin):
    actions = [resubmit_task]


class FailureAdmin(NamedActionRefusals, django_q_admin.FailAdmin):
    actions = [resubmit_task]


class AccessAttemptAdmin(NamedActionRefusals, axes_admin.AccessAttemptAdmin):
    # Without axes' "Clean up expired attempts": it fails (axes reads a request attribute only
    # its login path sets), and axes cleans up expired attempts on every login anyway.
    actions: list[str] = []


class SecondFactorAdmin(NamedActionRefusals):
    """django-otp's device pages, for taking a lost phone's device away (delete): a device is
    made only by its owner enrolling (staff/two_factor.py), and no page shows a key or a QR code."""

    def has_add_permission(self, request):
        return False

    def get_urls(self):
        # Without django-otp's key and QR code pages (OTP_ADMIN_HIDE_SENSITIVE_DATA refuses them anyway).
        return [url for url in super().get_urls() if getattr(url, "name", "") not in self.HIDDEN_URLS]

    HIDDEN_URLS = {"otp_totp_totpdevice_config", "otp_totp_totpdevice_qrcode"}


class AuthenticatorAppAdmin(SecondFactorAdmin, TOTPDeviceAdmin):
    pass


class RecoveryCodesAdmin(SecondFactorAdmin, StaticDeviceAdmin):
    pass


for model, model_admin in (
    (Success, SuccessAdmin),
    (Failure, FailureAdmin),
    (AccessAttempt, AccessAttemptAdmin),
    (TOTPDevice, AuthenticatorAppAdmin),
    (StaticDevice, RecoveryCodesAdmin),
):
    admin.site.unregister(model)
    admin.site.register(model, model_admin)
