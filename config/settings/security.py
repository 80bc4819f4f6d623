"""Who may reach the site and what signs its links: debug mode, the secret key, hosts;
HTTPS (redirect, HSTS, Secure cookies, the proxy's header), the Content-Security-Policy,
and the admin's login lockout.

Fail-closed: with debug off there is no generated key to fall back on, so a production
install that forgot DJANGO_SECRET_KEY refuses to start instead of signing with a guess.

The HTTPS settings are off by default, since `make run` and the tests serve plain HTTP on
loopback; the production values that make `manage.py check --deploy` clean are in
deploy/production.env (TLS ends at nginx, which tells Django with X-Forwarded-Proto).
"""

import secrets
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_secret

from .base import VAR_DIR

DEBUG = env_bool("DJANGO_DEBUG", True)


def _secret_key() -> str:
    """The signing key: from the environment, else one kept in var/ so links survive restarts."""
    if key := env_secret("DJANGO_SECRET_KEY"):
        return key
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

# --- HTTPS ---------------------------------------------------------------------------------
# Behind a TLS-terminating proxy (nginx) that sets X-Forwarded-Proto: trust that header for
# request.is_secure(). Only when such a proxy is really in front, or a client could claim HTTPS.
if env_bool("DJANGO_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", False)

# --- Content-Security-Policy (django-csp) ----------------------------------------------------
# Everything from this origin and nothing else: no inline scripts (the shop page is Vite's
# build, the admin has none, Swagger UI runs from a script file), no plugins, no framing.
# Inline styles stay allowed: Swagger UI and the admin set `style` attributes from script.
# Images may be data: URIs (the icons of Swagger UI and the admin).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# What Stripe's integration security guide asks of a page that loads Stripe.js: its script
# from js.stripe.com, its frames (the card field, 3-D Secure) from js.stripe.com and
# hooks.stripe.com, its calls to api.stripe.com. Added to the policy of the shop page alone,
# and only while that page loads Stripe.js (a publishable key set: config/frontend.py); the
# admin and the API docs never load it, so they keep the policy above.
STRIPE_JS_CONTENT_SECURITY_POLICY = {
    "script-src": ["https://js.stripe.com"],
    "frame-src": ["https://js.stripe.com", "https://hooks.stripe.com"],
    "connect-src": ["https://api.stripe.com"],
}

# --- the admin's login (django-axes) --------------------------------------------------------
# After ADMIN_LOGIN_FAILURE_LIMIT wrong passwords for one user name from one client address,
# that user name may not log in from that address for ADMIN_LOGIN_COOLOFF_MINUTES (429).
# Counted by the pair: by address alone, one person's typos locked every member of staff
# behind the shop's one office address; by name alone, a stranger could lock a member of
# staff out of their own account from elsewhere. Strong passwords (AUTH_PASSWORD_VALIDATORS)
# stand against guesses spread over many names or addresses. The lockout page
# (templates/admin/lockout.html) says for how long; docs/operations.md how to unlock.
AXES_FAILURE_LIMIT = env_int("ADMIN_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("ADMIN_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["ip_address", "username"]]
AXES_LOCKOUT_TEMPLATE = "admin/lockout.html"
AXES_RESET_ON_SUCCESS = True
# The same address the API's rate limits count (behind nginx: what it put in X-Forwarded-For).
AXES_CLIENT_IP_CALLABLE = "framework.throttling.client_address"


# --- two factors for staff who move money (staff/two_factor.py, django-otp) -----------------
# Authenticator apps list the account under the shop's back office. Wrong codes are throttled
# by django-otp (each failure doubles the wait before the next try, OTP_TOTP_THROTTLE_FACTOR).
# The admin's pages of devices never show a key, a QR code or a recovery code: whoever may read
# them (the auditor) must not be able to copy a manager's second factor.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True


def OTP_TOTP_ISSUER(device) -> str:  # noqa: N802 (django-otp reads a setting, or a callable, by this name)
    from django.conf import settings

    return f"{settings.SHOP_NAME} back office"
