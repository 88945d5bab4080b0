"""The dashboard's Requests panel in a real browser, against a real simulator and plugin:
a request shows up live; its detail has the plugin's log lines, the host API call and the
headers masked; replay answers as the original did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.conftest import Workspace, python_manifest, write_plugin
from tests.e2e.browser import chromium_path_fixture, page_fixture  # noqa: F401  (fixtures)
from tests.e2e.test_dashboard import LIVE_TIMEOUT_MS, OUTPUT, open_dashboard
from tests.integration.test_request_inspector import ECHO_APP, PLUGIN_ID

COOKIE = "session=cookie-value-never-shown"
PAYLOAD = "<img src=x onerror=window.__pwned=1>"


def test_the_requests_panel_lists_a_request_with_its_log_lines_and_replays_it(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, page: Page
) -> None:
    workspace.login()
    manifest = python_manifest(PLUGIN_ID, permissions="[contacts:read]")
    plugin = write_plugin(tmp_path / "inspected", manifest, {"app.py": ECHO_APP})
    simulator = start_simulator([plugin])
    open_dashboard(page, simulator)

    sent = simulator.post(
        f"/plugins/{PLUGIN_ID}/echo?from=browser",
        headers={"cookie": COOKIE, "content-type": "application/json"},
        content=json.dumps({"note": PAYLOAD}),
    )
    assert sent.status_code == 200, sent.text
    request_id = sent.headers["x-request-id"]

    row = page.locator(f'#requests tr.request[data-request="{request_id}"]')
    expect(row).to_contain_text(f"POST /plugins/{PLUGIN_ID}/echo?from=browser")
    expect(row).to_have_attribute("data-status", "200", timeout=LIVE_TIMEOUT_MS)
    expect(row).to_have_attribute("data-held", "false")
    row.click()
    detail = page.locator(f'.request-detail[data-request="{request_id}"]')
    logs = detail.locator(".request-logs .log")
    expect(logs.filter(has_text="serving echo (first)")).to_have_attribute("data-match", "time")
    expect(logs.filter(has_text="tagged")).to_have_attribute("data-match", "id")
    expect(detail.locator('.host-calls li[data-api="contacts.list"]')).to_contain_text("→ 200")
    sent_headers = detail.locator('[data-side="request"] dl')
    expect(sent_headers).to_contain_text("cookie***")
    expect(sent_headers).to_contain_text("authorizationBearer ***")
    expect(sent_headers).to_contain_text(f"x-request-id{request_id}")
    expect(detail.locator('[data-side="request"] pre.body')).to_contain_text(PAYLOAD)
    assert "cookie-value-never-shown" not in page.content()

    detail.locator("button.replay").click()
    expect(detail.locator(".replay-result")).to_contain_text(
        "replayed: 200 (same status)", timeout=LIVE_TIMEOUT_MS
    )
    assert json.loads(detail.locator("pre.replay-body").inner_text()) == sent.json()
    # The replay is a request of its own, listed live and naming the one it replays.
    replayed = page.locator("#requests tr.request", has_text=f"replay of {request_id}")
    expect(replayed).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#requests img")).to_have_count(0)
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.locator("#requests-card").screenshot(path=OUTPUT / "requests.png")
