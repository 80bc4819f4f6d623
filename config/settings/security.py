"""Who may reach the site and what signs its links: debug mode, the secret key, hosts.

Fail-closed: with debug off there is no generated key to fall back on, so a production
install that forgot DJANGO_SECRET_KEY refuses to start instead of signing with a guess.
"""

import secrets

from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_list, env_str

from .base import VAR_DIR

DEBUG = env_bool("DJANGO_DEBUG", True)


def _secret_key() -> str:
    """The signing key: from the environment, else one kept in var/ so links survive restarts."""
    if key := env_str("DJANGO_SECRET_KEY"):
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
