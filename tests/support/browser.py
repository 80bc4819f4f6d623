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


# Every document (frames too) reports what the browser refused under the Content-Security-
# Policy, from before its first script; the report goes to the test through a binding, so it
# survives the page navigating away.
REPORT_POLICY_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', event => window.__reportPolicyViolation(
  `${event.effectiveDirective} refused ${event.blockedURI || 'inline'} (${event.sourceFile}:${event.lineNumber})`));
"""


@contextlib.contextmanager
def chromium_page(viewport: dict | None = None, *, phone: bool = False):
    """A fresh page in a fresh headless Chromium, closed afterwards, under the policy the
    pages send: the test fails if the browser refused anything (a `securitypolicyviolation`
    event, or the console's "Content Security Policy" error). What was refused so far is
    `page.policy_violations`."""
    from playwright.sync_api import sync_playwright

    if not shutil.which("chromium"):
        pytest.fail("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it.")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone)
            violations: list[str] = []
            context.expose_function("__reportPolicyViolation", lambda report: violations.append(report))
            context.add_init_script(REPORT_POLICY_VIOLATIONS)
            context.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
            page = context.new_page()
            page.policy_violations = violations
            yield page
            if not page.is_closed():
                page.evaluate("0")  # a round trip: reports the page sent before it have arrived
            assert not violations, f"the browser refused under the Content-Security-Policy: {violations}"
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


def type_second_factor(page, user) -> None:
    """On the second factor's page the login led to, type the code of `user`'s authenticator
    app (enrolled for it here if need be) and send it, as a manager does after the password."""
    from tests.support.admin_client import authenticator_app, current_code

    page.get_by_label("Code").fill(current_code(authenticator_app(user)))
    page.get_by_role("button", name="Check").click()
