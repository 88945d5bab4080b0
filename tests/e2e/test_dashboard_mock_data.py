"""The dashboard's Mock data panel in a real browser, against a real simulator: each
tenant's data as it serves now, updated live when its file is edited, a refused edit with
file:line and fix, and a reset to the seed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from powerx.host.mock_data_file import render
from powerx.host.tenants import seed
from tests.conftest import HELLO_PYTHON, Workspace
from tests.e2e.browser import chromium_path_fixture, page_fixture  # noqa: F401  (fixtures)
from tests.e2e.test_dashboard import LIVE_TIMEOUT_MS, OUTPUT, open_dashboard
from tests.integration.test_hot_reload import start_example
from tests.integration.test_mock_data import _edit_contacts, _file


def test_the_mock_data_panel_shows_each_tenant_live_and_resets_it(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, page: Page
) -> None:
    simulator, _ = start_example(workspace, start_simulator, HELLO_PYTHON, tmp_path / "p")
    open_dashboard(page, simulator)
    contacts = page.locator('#mock-tables [data-section="contacts"] tbody tr')
    first = seed("acme")["contacts"][0]["name"]
    acme = page.locator('#mock-tenants button[data-tenant="acme"]')
    expect(acme).to_have_class(re.compile(r"\bchosen\b"))
    expect(contacts.first).to_contain_text(first)
    expect(page.locator("#mock-state")).to_contain_text(str(_file(workspace)))

    _edit_contacts(_file(workspace), ["Shown Live", "Another One"])
    expect(contacts).to_have_count(2, timeout=LIVE_TIMEOUT_MS)
    expect(contacts.first).to_contain_text("Shown Live")
    expect(page.locator("#mock-state")).to_have_attribute("data-revision", "1")

    path = _file(workspace)
    lines = path.read_text().splitlines()
    broken = next(n for n, line in enumerate(lines) if "  name: Shown Live" in line)
    lines[broken] = "  name: [unclosed"
    path.write_text("\n".join(lines) + "\n")
    problem = page.locator("#mock-problem")
    expect(problem).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    # The parser gives up a line on; it says where the unclosed bracket began.
    expect(problem).to_contain_text(f"acme.yaml:{broken + 2}")
    expect(problem).to_contain_text(f"flow sequence that begins on line {broken + 1}")
    expect(problem).to_contain_text("fix: fix the syntax at that line")
    expect(acme).to_have_class(re.compile(r"\bbad\b"))
    expect(contacts.first).to_contain_text("Shown Live")  # the last good data stays
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.locator("#mock-data-card").screenshot(path=OUTPUT / "mock-data.png")

    page.click("#mock-reset")
    expect(problem).to_be_hidden(timeout=LIVE_TIMEOUT_MS)
    expect(contacts.first).to_contain_text(first)
    assert path.read_text() == render("acme", seed("acme"))
