"""Debian's Chromium driven by Playwright (no downloaded browser)."""

import contextlib
import re
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps calling home, and this machine's
# closed network refuses every one of those connections.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def chromium_page():
    """A fresh page in a fresh headless Chromium, closed afterwards."""
    from playwright.sync_api import sync_playwright

    if not shutil.which("chromium"):
        pytest.fail("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it.")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


# Screenshots of browser tests, kept for a person to look at: artifacts/<test>/<step>.png (git ignores it).
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def save_screenshot(page, test_name: str, step: str) -> Path:
    """Save the whole page as artifacts/<test_name>/<step>.png and return the file's path."""
    path = ARTIFACTS / re.sub(r"[^\w.-]+", "_", test_name) / f"{step}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path
