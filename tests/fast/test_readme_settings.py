"""The table of environment variables in docs/configuration.md names every variable the project's code reads.

The code is read as text, not imported, so the test holds however the settings are laid out
(one module or a config/settings/ package with helpers in config/env.py): every `.py` file of
the project's packages and the top folder, except the tests and the benchmark harness (whose
own variables are the harness's options).
"""

import re
from pathlib import Path

from tests.support.processes import PROJECT_DIR

NAME = r"""["']([A-Z][A-Z0-9_]*)["']"""
# os.environ.get("X" / os.environ["X"] / os.environ.setdefault("X" / os.getenv("X", and the
# settings' helpers named env...: env_bool("X", env_int("X", env("X", env.str("X", _env_list("X"
READS = [
    re.compile(r"""\b(?:environ\.(?:get|setdefault|pop)|getenv)\(\s*""" + NAME),
    re.compile(r"""\benviron\[\s*""" + NAME + r"""\s*\]"""),
    re.compile(r"""(?<![\w.])_*env\w*(?:\.\w+)?\(\s*""" + NAME),
]
NOT_PROJECT_CODE = {"tests", "bench", "frontend", "node_modules", "var"}


def project_sources() -> list[Path]:
    packages = [
        path
        for path in PROJECT_DIR.iterdir()
        if path.is_dir() and (path / "__init__.py").exists() and path.name not in NOT_PROJECT_CODE
    ]
    return sorted(PROJECT_DIR.glob("*.py")) + sorted(f for package in packages for f in package.rglob("*.py"))


def variables_read() -> dict[str, set[str]]:
    """Each variable name the code reads, with the files that read it."""
    found: dict[str, set[str]] = {}
    for path in project_sources():
        text = path.read_text()
        for pattern in READS:
            for match in pattern.finditer(text):
                found.setdefault(match.group(1), set()).add(str(path.relative_to(PROJECT_DIR)))
    return found


def documented_variables() -> set[str]:
    """The names in the first column of the table under docs/configuration.md's "## Variables"."""
    page = (PROJECT_DIR / "docs" / "configuration.md").read_text()
    section = page.split("\n## Variables", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("|"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", first_cell))
    return names


def test_the_scan_finds_variables_read_each_way():
    found = variables_read()

    assert "config/settings/database.py" in found["DATABASE_URL"]  # os.environ.get
    assert "config/settings/security.py" in found["DJANGO_DEBUG"]  # env_bool(
    assert "manage.py" in found["DJANGO_SETTINGS_MODULE"]  # os.environ.setdefault
    assert "orders/management/commands/ensure_admin.py" in found["DJANGO_SUPERUSER_EMAIL"]


def test_the_patterns_catch_the_usual_spellings():
    code = """
    os.environ["A_1"]; os.environ.get('B_2', 1); os.environ.setdefault("C_3", "x"); os.getenv("D_4")
    env_bool("E_5", True); env_int( "F_6", 2); env("G_7"); env.str("H_8"); _env_list("I_9"); environ.get("J_10")
    """
    found = {match.group(1) for pattern in READS for match in pattern.finditer(code)}

    assert found == {"A_1", "B_2", "C_3", "D_4", "E_5", "F_6", "G_7", "H_8", "I_9", "J_10"}


def test_every_variable_the_code_reads_is_in_the_configuration_table():
    documented = documented_variables()
    missing = {name: sorted(files) for name, files in variables_read().items() if name not in documented}

    assert not missing, f"read by the code, missing from the table of docs/configuration.md: {missing}"
