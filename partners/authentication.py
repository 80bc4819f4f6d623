"""How a partner request is let in: its key (authentication), the key's scopes (permission)
and its own rate limit (throttle), DRF's three checks in that order."""

from dataclasses import dataclass

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from framework.throttling import RateThrottle
from partners.models import PartnerKey
from partners.selectors import key_for_token
from partners.services import note_key_used

REALM = 'Bearer realm="partner-api"'


@dataclass(frozen=True)
class Partner:
    """Who a request comes from: the partner behind a key (DRF's `request.user`)."""

    key: PartnerKey
    is_authenticated = True

    def __str__(self) -> str:
        return self.key.name


class PartnerKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer pk_<prefix>.<secret>`. No header: not authenticated (401 from the
    permission check); a key that is unknown or revoked: 401 at once."""

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != b"bearer":
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send the key as 'Authorization: Bearer <key>'.")
        try:
            token = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.") from None
        key = key_for_token(token)
        if key is None or not key.is_active:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        note_key_used(key)
        return Partner(key), key

    def authenticate_header(self, request) -> str:
        # Present, so DRF answers a missing or refused key with 401, not 403.
        return REALM


class HasScope(BasePermission):
    """The view's `required_scope` must be among the key's scopes; 403 naming it otherwise."""

    def has_permission(self, request, view) -> bool:
        key = request.auth
        if not isinstance(key, PartnerKey):
            return False  # no key: DRF answers 401, since an authenticator was offered
        scope = view.required_scope
        if scope not in key.scopes:
            raise exceptions.PermissionDenied(f"This key lacks the scope '{scope}'.")
        return True


class PartnerKeyRateThrottle(RateThrottle):
    """Counts the requests of one key, whatever address they come from."""

    scope = "partner_key"

    def get_cache_key(self, request, view):
        key = request.auth
        return self._key(key.prefix) if isinstance(key, PartnerKey) else None
