"""The second factor's pages in the admin (enrol, verify) and the gate that sends staff who
move money to them. The rules live in staff/two_factor.py."""

import base64
import io
from typing import Any

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django_otp.qr import write_qrcode_image

from staff import two_factor


class RequireSecondFactorMiddleware:
    """Sends a logged-in member of staff who needs a second factor, and has not passed it in
    this session, from any admin page to the second factor's page (and back after it)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if request.path.startswith("/admin/") and not self._open_to_all(request.path):
            user: Any = request.user  # OTPMiddleware gives it is_verified()
            if two_factor.needs_second_factor(user) and not user.is_verified():
                return redirect(f"{reverse('two_factor')}?next={request.get_full_path()}")
        return self.get_response(request)

    @staticmethod
    def _open_to_all(path: str) -> bool:
        return path in (reverse("admin:login"), reverse("admin:logout")) or path.startswith(reverse("two_factor"))


def _next(request: HttpRequest) -> str:
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(wanted, {request.get_host()}, require_https=request.is_secure())
    return wanted if safe and wanted.startswith("/") else reverse("admin:index")


@never_cache
@staff_member_required
def second_factor_page(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator app (first time), or give a code from it or a recovery code."""
    user: Any = request.user  # OTPMiddleware gives it is_verified()
    if not two_factor.needs_second_factor(user) or user.is_verified():
        return redirect(_next(request))
    enrolled = two_factor.is_enrolled(user)
    next_url = _next(request)
    context: dict[str, Any] = {
        "title": "Two-factor check" if enrolled else "Set up two-factor login",
        "enrolled": enrolled,
        "next": next_url,
        "error": "",
    }
    if not enrolled:
        device = two_factor.enrolment_device(user)
        context["key"] = base64.b32encode(device.bin_key).decode()
    if request.method == "POST":
        token = request.POST.get("token", "")
        if enrolled:
            if two_factor.verify_session(request, token):
                return redirect(next_url)
            context["error"] = "That code is not right (or was used already). Try the current one."
        else:
            result = two_factor.confirm_enrolment(request, token)
            if result is not None:
                context.update(title="Your recovery codes", recovery_codes=result.recovery_codes)
            else:
                context["error"] = "That code is not right. Scan the code again and type the six digits it shows now."
    context.update(admin.site.each_context(request))
    return TemplateResponse(request, "admin/two_factor.html", context)


@never_cache
@staff_member_required
def enrolment_qr_code(request: HttpRequest) -> HttpResponse:
    """The QR code of the authenticator app being enrolled (none once one is confirmed)."""
    if two_factor.is_enrolled(request.user) or not two_factor.needs_second_factor(request.user):
        return HttpResponse(status=404)
    out = io.BytesIO()
    write_qrcode_image(two_factor.enrolment_device(request.user).config_url, out)
    return HttpResponse(out.getvalue(), content_type="image/svg+xml")
