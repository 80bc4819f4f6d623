"""The shop page's own unit tests (vitest), run by `make test`; `make lint` runs them too, with
`tsc`, ESLint and the check that its API types match the schema."""

import shutil
import subprocess

import pytest

from tests.support.processes import PROJECT_DIR

FRONTEND = PROJECT_DIR / "frontend"

pytestmark = pytest.mark.slow


def _run(*command: str) -> subprocess.CompletedProcess:
    if not (FRONTEND / "node_modules").is_dir():
        pytest.fail("frontend/node_modules is missing: run `npm ci` in frontend/ (make test does).")
    npx = shutil.which("npx")
    assert npx, "Node.js and npm are needed to build and test the shop page"
    return subprocess.run([npx, *command], cwd=FRONTEND, capture_output=True, text=True, timeout=300)


def test_the_shop_pages_unit_tests_pass():
    result = _run("vitest", "run")
    assert result.returncode == 0, f"vitest run:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
