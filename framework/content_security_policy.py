"""django-csp's middleware with the settings' policy string built once per process.

django-csp (4.0) builds the Content-Security-Policy header anew for every response: a
dataclass copied by `dataclasses.asdict`, every directive of the settings copied, sorted and
joined, about 100 Python and 250 C calls per request (bench/accept_calls.py), for a string
that is the same every time when nothing of it varies per response. Here a response that
neither uses a nonce (`request.csp_nonce` never read) nor changes the policy (django-csp's
decorators, or config/frontend.py's `_csp_update` for Stripe.js), with no report-only policy
set, gets the string built once, by django-csp's own `build_policy` from the same settings;
every other response goes through django-csp unchanged. The policy served is the same one.
The string is built again when a test changes the settings (`setting_changed`).
"""

import http.client
from functools import cache

from csp.constants import HEADER
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

# What makes a response's policy its own (django-csp's attributes, set by its decorators).
PER_RESPONSE = ("_csp_config", "_csp_update", "_csp_replace", "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro")
DEBUG_EXEMPT = (http.client.INTERNAL_SERVER_ERROR, http.client.NOT_FOUND)


@cache
def settings_policy() -> tuple[str, tuple[str, ...]]:
    """The header of CONTENT_SECURITY_POLICY as django-csp builds it, and its excluded prefixes."""
    policy = getattr(settings, "CONTENT_SECURITY_POLICY", None) or {}
    return build_policy(), tuple(policy.get("EXCLUDE_URL_PREFIXES", None) or ())


@receiver(setting_changed)
def _forget_policy(*, setting: str, **kwargs) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        settings_policy.cache_clear()


class CSPMiddleware(DjangoCSPMiddleware):
    """django-csp's CSPMiddleware; the header of a response with the settings' policy as it
    is (no nonce, no per-response change, no report-only policy) built once per process."""

    def process_response(self, request, response):
        if (
            getattr(request, "_csp_nonce", None) is not None
            or getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None)
            or any(getattr(response, name, None) is not None for name in PER_RESPONSE)
        ):
            return super().process_response(request, response)
        # From here as django-csp's own process_response, with the policy built once.
        if response.status_code in DEBUG_EXEMPT and settings.DEBUG:
            return response
        policy, excluded = settings_policy()
        if (
            policy
            and HEADER not in response
            and getattr(response, "_csp_exempt", False) is False
            and not request.path_info.startswith(excluded)
        ):
            response[HEADER] = policy
        # The header is written: a nonce asked for now could not be in it (django-csp's guard).
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response
