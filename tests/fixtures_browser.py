"""The dashboard as a real server process and Debian's chromium driven by Playwright.

Chromium comes from the Debian package (``scripts/ci/browser.sh`` installs it); no browser build
can be downloaded here. Set ``CLOUDBRIDGE_SCREENSHOTS=1`` to write the screenshots the tests take
into ``docs/img/`` (the ones docs/dashboard.md shows); otherwise they go to the test's tmp dir.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    # nothing may reach the network: no update checks, component downloads, sync or field trials
    "--disable-background-networking", "--disable-component-update", "--disable-default-apps", "--disable-sync",
    "--disable-domain-reliability", "--disable-breakpad", "--metrics-recording-only", "--no-first-run",
    "--no-default-browser-check", "--disable-dev-shm-usage", "--disable-features=Translate,OptimizationHints",
]
DOCS_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "img"


@dataclass
class Dashboard:
    """A running ``cloudbridge dashboard``: its base URL (no token) and token."""

    base: str
    token: str
    process: subprocess.Popen[str]

    def url(self, path: str = "/") -> str:
        """``path`` on the dashboard with the token."""
        sep = "&" if "?" in path else "?"
        return f"{self.base}{path}{sep}token={self.token}"


def start_dashboard() -> Dashboard:
    """``cloudbridge dashboard --port 0`` in its own process group (inherits CLOUDBRIDGE_HOME and settings)."""
    env = {**os.environ, "NO_COLOR": "1"}
    process = subprocess.Popen([sys.executable, "-m", "cloudbridge.cli", "dashboard", "--port", "0"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    line = process.stdout.readline() if process.stdout else ""
    if "http://127.0.0.1:" not in line:
        stop_dashboard(process)
        raise AssertionError(f"the dashboard did not start: {line!r} {process.stderr.read() if process.stderr else ''}")
    url = line.split(": ", 1)[1].strip()
    base, token = url.split("/?token=")
    return Dashboard(base, token, process)


def stop_dashboard(process: subprocess.Popen[str]) -> None:
    """Stop the dashboard's process group (SIGINT first, as Ctrl-C would)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.fixture(scope="session", name="browser")
def browser_fixture() -> Iterator[object]:
    """One chromium for the whole session."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed; run scripts/ci/browser.sh (scripts/test.sh does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(name="page")
def page_fixture(browser: object) -> Iterator[object]:
    """A fresh browser context (no cookies) and page."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def screenshot(page: object, name: str, tmp_path: Path) -> Path:
    """Save a full-page screenshot (into docs/img with CLOUDBRIDGE_SCREENSHOTS=1)."""
    folder = DOCS_IMAGES if os.environ.get("CLOUDBRIDGE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path
