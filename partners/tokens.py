"""The shape of a partner key: `pk_<prefix>.<secret>`, and what is kept of its secret."""

import hashlib
import secrets

KEY_START = "pk_"


def hash_secret(secret: str) -> str:
    """What the database keeps of a key's secret: its SHA-256 (the secret has 256 random
    bits, so a fast hash suffices where a password needs a slow one)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token() -> tuple[str, str, str]:
    """A new key: (prefix, secret, the token a partner sends)."""
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    return prefix, secret, f"{KEY_START}{prefix}.{secret}"


def split_token(token: str) -> tuple[str, str] | None:
    """(prefix, secret) of a token, or None when it does not have a key's shape."""
    if not token.startswith(KEY_START):
        return None
    prefix, dot, secret = token.removeprefix(KEY_START).partition(".")
    return (prefix, secret) if dot and prefix and secret else None
