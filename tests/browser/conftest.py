"""Playwright driving the system's Chromium (Debian's `chromium` package) headless.

Browsers are never downloaded (`playwright install` cannot reach its download host here). The
Chromium binary is `SHEAF_CHROMIUM` when set, else `chromium` or `chromium-browser` on PATH; when
none is found the session tries `apt-get install chromium` (as root or with passwordless sudo),
and the browser tests skip with the reason when that is not possible either.

Screenshots go to `var/artifacts/browser/` (gitignored); the path is printed after the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "var" / "artifacts" / "browser"
APT_TIMEOUT = 900
# As the machine's probe runs it: no background connections, which a closed network refuses.
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _on_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _apt_prefix() -> list[str] | None:
    """How to run apt-get as root here, or None when we cannot."""
    if shutil.which("apt-get") is None:
        return None
    if os.geteuid() == 0:
        return []
    sudo = shutil.which("sudo")
    if sudo is None:
        return None
    probe = subprocess.run([sudo, "-n", "true"], capture_output=True, check=False)  # noqa: S603
    return [sudo, "-n"] if probe.returncode == 0 else None


def _apt_install_chromium(prefix: list[str]) -> str:
    """Install Debian's chromium; '' on success, else what apt said last."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*prefix, "apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    output = ""
    for commands in ([install], [[*prefix, "apt-get", "update"], install]):
        for command in commands:
            done = subprocess.run(  # noqa: S603 - apt-get with fixed arguments
                command, capture_output=True, text=True, env=env, timeout=APT_TIMEOUT, check=False
            )
            output = (done.stdout + done.stderr)[-500:]
            if done.returncode != 0:
                break
        else:
            return ""
    return output


@pytest.fixture(scope="session")
def chromium_path() -> str:
    configured = os.environ.get("SHEAF_CHROMIUM")
    if configured:
        if not (os.path.isfile(configured) and os.access(configured, os.X_OK)):
            pytest.skip(f"SHEAF_CHROMIUM={configured} is not an executable file")
        return configured
    found = _on_path()
    if found:
        return found
    prefix = _apt_prefix()
    if prefix is None:
        pytest.skip(
            "no Chromium: neither chromium nor chromium-browser is on PATH, and apt-get cannot be "
            "run as root here; install Debian's chromium package or set SHEAF_CHROMIUM"
        )
    failure = _apt_install_chromium(prefix)
    found = _on_path()
    if not found:
        pytest.skip(f"no Chromium: `apt-get install chromium` did not provide it: {failure}")
    return found


@pytest.fixture(scope="session")
def browser(chromium_path: str, request) -> Iterator:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed (`make install`)"
    )
    # Playwright's sync API keeps an asyncio loop on this thread, and Django refuses ORM calls
    # from a thread with a running loop; the test's own ORM calls are plain synchronous code.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_api.sync_playwright() as playwright:
            launched = playwright.chromium.launch(
                executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
            )
            try:
                yield launched
            finally:
                launched.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"browser test screenshots: {ARTIFACTS}")


class Shots:
    """Numbered full-page screenshots of one test, under var/artifacts/browser/<test>/."""

    def __init__(self, page, folder: Path) -> None:
        self.page = page
        self.folder = folder
        self.count = 0

    def __call__(self, step: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def sign_in(page, live_server, user) -> None:
    """Give the page a session of `user` on the live server, and record on the window every
    Content-Security-Policy violation its pages see (`window.cspViolations`)."""
    from django.test import Client

    from tests.browser.test_content_security_policy import RECORD_VIOLATIONS_JS

    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page.context.add_init_script(RECORD_VIOLATIONS_JS)


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def shots(page, request) -> Shots:
    folder = ARTIFACTS / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return Shots(page, folder)
