"""The dashboard shows a plugin's type errors (the dev loop's tsc run) as warnings with
file:line beside the plugin, which keeps serving, and a clean run clears them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.conftest import Workspace
from tests.e2e.browser import chromium_path_fixture, page_fixture  # noqa: F401  (fixtures)
from tests.e2e.test_dashboard import LIVE_TIMEOUT_MS, OUTPUT, open_dashboard
from tests.integration.test_type_checks import NODE_ID, copy_hello_node, wait_type_check

# tsc runs beside the reload, at low priority: give it the time a loaded machine takes.
CHECK_TIMEOUT_MS = 90_000


def test_dashboard_lists_type_errors_with_file_and_line_until_a_clean_run(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, page: Page
) -> None:
    workspace.login()
    plugin = copy_hello_node(tmp_path / "hello-node")
    simulator = start_simulator([plugin], "--watch")
    clean = wait_type_check(simulator, NODE_ID, "clean")
    open_dashboard(page, simulator)
    row = page.locator(f'#plugins tr[data-plugin="{NODE_ID}"]')
    expect(row.locator(".types")).to_have_count(0)

    source = plugin / "src" / "index.ts"
    good = source.read_text()
    line = next(n for n, text in enumerate(good.splitlines(), 1) if "contacts[0]?.name" in text)
    source.write_text(good.replace("contacts[0]?.name", "contacts[0]?.nme"))
    warning = row.locator('.types[data-state="errors"]')
    expect(warning).to_contain_text("1 type error (tsc", timeout=CHECK_TIMEOUT_MS)
    expect(warning.locator("li .where")).to_have_text(re.compile(rf"^src/index\.ts:{line}:\d+$"))
    expect(warning.locator("li")).to_contain_text("TS2551 Property 'nme' does not exist")
    expect(row.locator(".badge")).to_have_text("running")  # it serves the save regardless
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=OUTPUT / "type-errors.png", full_page=True)

    errors = wait_type_check(simulator, NODE_ID, "errors", after=clean["at"])
    source.write_text(good)
    wait_type_check(simulator, NODE_ID, "clean", after=errors["at"])
    expect(row.locator(".types")).to_have_count(0, timeout=LIVE_TIMEOUT_MS)
