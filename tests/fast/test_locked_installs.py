"""The locks (requirements.lock, requirements-dev.lock) agree with the declared dependencies.

requirements.txt and requirements-dev.txt say what the project asks for; `make lock` turns
them into locks that name every package, direct and transitive, with its hashes, and every
install (.venv, the image) takes the locks with `pip install --require-hashes`. A declared
dependency added, removed or moved to another version without `make lock` fails here.
"""

import re
from dataclasses import dataclass, field

import pytest

from tests.support.processes import PROJECT_DIR

LOCKS = {"requirements.txt": "requirements.lock", "requirements-dev.txt": "requirements-dev.lock"}
# Each lock and the declared files it is made from (requirements-dev.txt includes requirements.txt).
LOCKED_FROM = [
    ("requirements.lock", "requirements.txt"),
    ("requirements-dev.lock", "requirements.txt"),
    ("requirements-dev.lock", "requirements-dev.txt"),
]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_pins(requirements: str) -> dict[str, str]:
    """The name==version lines of one requirements file (not those it includes with -r)."""
    pins = {}
    for line in (PROJECT_DIR / requirements).read_text().splitlines():
        if match := PIN.match(line.strip()):
            pins[normalized(match[1])] = match[2]
    return pins


@dataclass
class LockedPackage:
    version: str
    hashes: int = 0
    via: set[str] = field(default_factory=set)


def locked_packages(lock: str) -> dict[str, LockedPackage]:
    """Each package of a lock made by uv: its version, how many hashes, what asked for it."""
    packages: dict[str, LockedPackage] = {}
    current = None
    for line in (PROJECT_DIR / lock).read_text().splitlines():
        if match := PIN.match(line):
            current = packages[normalized(match[1])] = LockedPackage(match[2])
        elif current and line.strip().startswith("--hash=sha256:"):
            current.hashes += 1
        elif current and (via := re.match(r"\s+#\s+(?:via\s+)?(-r \S+|-c \S+|[A-Za-z0-9][\w.-]*)$", line)):
            current.via.add(via[1])
    return packages


@pytest.mark.parametrize(("lock", "requirements"), LOCKED_FROM)
def test_every_declared_pin_is_locked_at_its_version(lock, requirements):
    locked = locked_packages(lock)

    for name, version in declared_pins(requirements).items():
        assert name in locked, f"{name} is declared in {requirements} but not in {lock}: run make lock"
        assert locked[name].version == version, (
            f"{requirements} declares {name}=={version}, {lock} has {locked[name].version}: run make lock"
        )


@pytest.mark.parametrize(("lock", "requirements"), LOCKED_FROM)
def test_the_lock_holds_no_direct_dependency_that_is_no_longer_declared(lock, requirements):
    declared = declared_pins(requirements)

    for name, package in locked_packages(lock).items():
        if f"-r {requirements}" in package.via:
            assert name in declared, f"{lock} still locks {name}, which {requirements} no longer declares"


@pytest.mark.parametrize("lock", list(LOCKS.values()))
def test_every_locked_package_carries_its_hashes_and_a_reason(lock):
    packages = locked_packages(lock)

    assert packages, f"{lock} names no package"
    for name, package in packages.items():
        assert package.hashes >= 1, f"{name} has no hash in {lock}: pip --require-hashes would refuse the install"
        assert package.via, f"{name} is in {lock} but nothing asks for it"


def test_the_development_lock_installs_the_runtime_lock_unchanged():
    runtime = locked_packages("requirements.lock")
    development = locked_packages("requirements-dev.lock")

    changed = {
        name: (package.version, development[name].version)
        for name, package in runtime.items()
        if name in development and development[name].version != package.version
    }
    assert set(runtime) <= set(development), f"missing from the dev lock: {set(runtime) - set(development)}"
    assert changed == {}


def test_installs_take_the_locks_with_their_hashes():
    makefile = (PROJECT_DIR / "Makefile").read_text()
    dockerfile = (PROJECT_DIR / "Dockerfile").read_text()

    assert "--require-hashes -r requirements-dev.lock" in makefile
    assert "--require-hashes" in dockerfile and "requirements.lock" in dockerfile
    assert "-r requirements" not in makefile.replace("-r requirements-dev.lock", "")


def test_the_locks_say_how_they_are_made():
    for lock in LOCKS.values():
        assert (PROJECT_DIR / lock).read_text().splitlines()[1].strip("# ") == "make lock"
