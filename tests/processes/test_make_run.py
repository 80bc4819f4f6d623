"""What `make run` redoes on a start: the slow steps only when their inputs changed."""

import os
import subprocess
import time
from pathlib import Path

from tests.support.processes import PROJECT_DIR

BASE_DIR = PROJECT_DIR


def steps_of_make_run(tmp_path: Path, *pretend_changed: str) -> str:
    """The commands `make serve-setup` would run (`make -n`), its installs taken as done and
    `pretend_changed` taken as just edited (`-W`), with the static files collected into tmp_path."""
    installed = tmp_path / "installed"
    page = tmp_path / "index.html"
    for done in (installed, page):
        done.touch()
    command = ["make", "-n", f"STAMP={installed}", f"NODE_MODULES={installed}", f"FRONTEND={page}"]
    command += [f"STATIC_ROOT={tmp_path / 'static'}"]
    command += [f"-W{path}" for path in pretend_changed]
    result = subprocess.run(
        [*command, "serve-setup"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SKIP_SYSTEM_PACKAGES": "1"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_run_collects_the_static_files_only_when_a_static_source_changed(tmp_path):
    assert "collectstatic" in steps_of_make_run(tmp_path), "a first start collects them"

    (tmp_path / "static").mkdir()
    stamp = tmp_path / "static" / ".collected"
    stamp.touch()
    later = time.time() + 60  # newer than every source, whatever the checkout's times
    os.utime(stamp, (later, later))

    assert "collectstatic" not in steps_of_make_run(tmp_path)
    assert "migrate" in steps_of_make_run(tmp_path), "the rest of the start still runs"
    assert "collectstatic" in steps_of_make_run(tmp_path, "receipts/static/receipts/receipt.css")
    page_asset = next(path for path in (BASE_DIR / "frontend" / "dist").rglob("*") if path.is_file())
    assert "collectstatic" in steps_of_make_run(tmp_path, str(page_asset.relative_to(BASE_DIR)))
    assert "collectstatic" in steps_of_make_run(tmp_path, str(tmp_path / "installed")), "new packages, new admin files"
