"""Headless Chromium for the dashboard's end-to-end tests.

Playwright's own browser download needs the network, so the tests drive Debian's Chromium
instead. When it is missing, the `chromium_path` fixture installs it with apt as part of
the test setup; it skips only where that cannot work (not root, or no apt-get).

Import the fixtures into a test module to use them:

    from tests.e2e.browser import chromium_path_fixture, page_fixture  # noqa: F401

The functions carry a suffix so a test's `page` argument does not shadow an import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_TIMEOUT_S = 900


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
    )


def install_chromium(apt_get: str) -> str:
    """Install Chromium with apt; return what went wrong, or "" once it is there."""
    install = [apt_get, "install", "-y", "--no-install-recommends", "chromium"]
    # The package lists are often fresh enough; only refresh them when that is not so.
    result = _run(install)
    if result.returncode != 0:
        update = _run([apt_get, "update"])
        if update.returncode != 0:
            return f"`apt-get update` failed:\n{update.stderr[-2000:]}"
        result = _run(install)
    if result.returncode != 0:
        return f"`apt-get install chromium` failed:\n{result.stderr[-2000:]}"
    if not CHROMIUM.is_file():
        return f"apt-get installed chromium, but {CHROMIUM} is still missing"
    return ""


@pytest.fixture(scope="session", name="chromium_path")
def chromium_path_fixture() -> Path:
    """Debian's Chromium, installed first if it is missing and we are allowed to."""
    if CHROMIUM.is_file():
        return CHROMIUM
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        pytest.skip(f"{CHROMIUM} is missing and there is no apt-get to install it with")
    if os.geteuid() != 0:
        pytest.skip(
            f"{CHROMIUM} is missing and only root can install it: "
            "run `sudo apt-get install --no-install-recommends chromium`"
        )
    problem = install_chromium(apt_get)
    if problem:
        pytest.fail(f"could not install Chromium for the browser tests: {problem}")
    return CHROMIUM


@pytest.fixture(name="page")
def page_fixture(chromium_path: Path) -> Iterator[Page]:
    """A fresh headless page; an uncaught error in the page's script fails the test."""
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium_path), args=["--no-sandbox"]
        )
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        new_page = context.new_page()
        new_page.set_default_timeout(15_000)
        new_page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            yield new_page
        finally:
            # Closing the browser also closes its event streams, so a simulator
            # stopped after this test is not kept waiting for them.
            context.close()
            browser.close()
    if errors:
        pytest.fail("the page raised JavaScript errors:\n" + "\n".join(errors))
