"""The dashboard's menus and tools, in a real browser, against a real simulator running the
notes backend: it lists each plugin's menus and tools, and calls a tool as the identity
chosen, showing the answer, a refusal, and each schema violation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.conftest import RunningSimulator
from tests.e2e.browser import chromium_path_fixture, page_fixture  # noqa: F401  (fixtures)
from tests.e2e.test_dashboard import LIVE_TIMEOUT_MS, OUTPUT, open_dashboard
from tests.integration.test_tools_rbac import NOTES_ID, notes_workspace, seen_by_plugin


def call(page: Page, tool: str, identity: str, given: dict[str, Any]) -> None:
    page.select_option("#tool-choice", f"{NOTES_ID}\n{tool}")
    page.select_option("#tool-identity", identity)
    page.fill("#tool-input", json.dumps(given))
    page.click("#tool-call-button")


def test_dashboard_lists_menus_and_tools_and_calls_one(tmp_path: Path, page: Page) -> None:
    workspace = notes_workspace(tmp_path)
    simulator = RunningSimulator(workspace, [workspace.root / "notes"])
    try:
        open_dashboard(page, simulator)
        block = page.locator(f'#tools-list .plugin-tools[data-plugin="{NOTES_ID}"]')
        expect(block.locator('[data-menu="note.notes"]')).to_contain_text("/plugins/note/notes")
        create = block.locator('.tool[data-tool="note.note.create"]')
        expect(create).to_contain_text("POST /api/v1/notes")
        expect(create.locator(".needs")).to_have_text("note:create")
        expect(block.locator(".tool")).to_have_count(4)
        expect(page.locator("#tool-identity option")).to_have_text(
            ["developer (the run's)", "viewer", "writer"]
        )
        head = page.locator("#tool-result-head")

        call(page, "note.note.create", "writer", {"title": "from the dashboard"})
        expect(head).to_contain_text("201 · ok · as writer", timeout=LIVE_TIMEOUT_MS)
        expect(page.locator("#tool-output")).to_contain_text('"title": "from the dashboard"')
        assert seen_by_plugin(simulator)[-1] == "POST /api/v1/notes"

        call(page, "note.note.create", "viewer", {"title": "not allowed"})
        expect(head).to_contain_text("403 rbac_denied", timeout=LIVE_TIMEOUT_MS)
        expect(head).to_contain_text("'viewer' lacks permission 'note:create'")
        expect(page.locator("#tool-fix")).to_contain_text("--as developer")

        call(page, "note.note.create", "developer", {"status": "later"})
        expect(head).to_contain_text("422 tool_input_invalid", timeout=LIVE_TIMEOUT_MS)
        expect(page.locator("#tool-violations li")).to_have_text(
            ["$.title: required, but missing", re.compile(r"^\$\.status: 'later' is not one of")]
        )

        call(page, "note.note.broken", "developer", {})
        expect(head).to_contain_text("answer breaks output_schema in 2 place(s)")
        violations = page.locator("#tool-violations li")
        expect(violations).to_have_count(2)
        assert violations.evaluate_all("(items) => items.map((i) => i.dataset.where)") == [
            "$.id",
            "$.title",
        ]
        expect(page.locator("#tool-output")).to_contain_text('"id": "seven"')
        OUTPUT.mkdir(parents=True, exist_ok=True)
        page.locator("#tools-card").screenshot(path=OUTPUT / "tools.png")
    finally:
        simulator.stop()
