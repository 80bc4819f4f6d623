"""Reading settings from the environment: one typed helper per kind of value.

Each helper takes the variable's NAME as its first argument, written out literally at the
call (`env_int("Q_WORKERS", 2)`), so that a grep (and the configuration table's test) finds every
variable the settings read. `environ` defaults to the process environment; a function that
builds one setting from another mapping (see `receipt_storage_from_env`) passes its own.

What an empty value means is kept as the settings have always read it: for strings,
decimals and floats an empty value is a value (`""`, and a start-up error for a number),
while for integers and booleans an empty value means "unset" and gives the default.
"""

import os
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

TRUE_VALUES = frozenset({"1", "true", "yes", "on"})


def env_str(name: str, default: str = "", *, environ: Mapping[str, str] = os.environ) -> str:
    return environ.get(name, default)


def env_bool(name: str, default: bool, *, environ: Mapping[str, str] = os.environ) -> bool:
    """True for 1/true/yes/on (any case), false for anything else; unset or empty: the default."""
    value = environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in TRUE_VALUES


def env_int(name: str, default: int, *, environ: Mapping[str, str] = os.environ) -> int:
    value = environ.get(name)
    return int(value) if value else default


def env_float(name: str, default: str, *, environ: Mapping[str, str] = os.environ) -> float:
    """The default is written as the string it would be in the environment, parsed the same way."""
    return float(environ.get(name, default))


def env_decimal(name: str, default: str, *, environ: Mapping[str, str] = os.environ) -> Decimal:
    """Exact: money and rates never pass through a float. The default is written as a string."""
    return Decimal(environ.get(name, default))


def env_list(name: str, default: str, *, environ: Mapping[str, str] = os.environ) -> list[str]:
    """A comma-separated list, empty items dropped; the default is written as the variable would be."""
    return [item for item in environ.get(name, default).split(",") if item]


def env_secret(name: str, default: str = "", *, environ: Mapping[str, str] = os.environ) -> str:
    """A secret from NAME, or from the file that NAME_FILE names (as Docker and Kubernetes mount them).

    The file's trailing line break is not part of the secret. Both set, or a file that cannot be
    read, stop start-up naming the variable: a secret silently taken from the other place would
    be the wrong one.
    """
    path = environ.get(f"{name}_FILE")
    if not path:
        return environ.get(name, default)
    if environ.get(name):
        raise ImproperlyConfigured(f"{name} and {name}_FILE are both set: set one.")
    try:
        return Path(path).read_text().rstrip("\r\n")
    except OSError as error:
        raise ImproperlyConfigured(f"{name}_FILE={path}: the file cannot be read ({error.strerror}).") from None
