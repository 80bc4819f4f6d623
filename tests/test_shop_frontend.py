"""The shop page's own checks, run by `make test`: its types, its lint and its vitest suite."""

import shutil
import subprocess
from pathlib import Path

import pytest

FRONTEND = Path(__file__).resolve().parent.parent / "frontend"

pytestmark = pytest.mark.slow


def _run(*command: str) -> subprocess.CompletedProcess:
    if not (FRONTEND / "node_modules").is_dir():
        pytest.fail("frontend/node_modules is missing: run `npm ci` in frontend/ (make test does).")
    npx = shutil.which("npx")
    assert npx, "Node.js and npm are needed to build and test the shop page"
    return subprocess.run([npx, *command], cwd=FRONTEND, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "command",
    [("tsc",), ("eslint", "--max-warnings", "0", "."), ("vitest", "run")],
    ids=["typescript", "eslint", "vitest"],
)
def test_the_shop_pages_own_checks_pass(command):
    result = _run(*command)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
