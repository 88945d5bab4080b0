"""The Hot Reload Dashboard in a real browser, against a real simulator and real plugins."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from powerx.testing import wait_until
from tests.conftest import HELLO_PYTHON, REPO, Workspace, python_manifest, write_plugin
from tests.e2e.browser import chromium_path_fixture, page_fixture  # noqa: F401  (fixtures)

PY_ID = "com.example.hello-python"
LIVE_TIMEOUT_MS = 15_000
OUTPUT = Path(os.environ.get("POWERX_TEST_OUTPUT", REPO / "test-output")) / "dashboard"

PAYLOAD = '<img src=x onerror="window.__pwned=1">'
LOUD_APP = f"""
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def home(request):
    print({PAYLOAD!r}, flush=True)
    return JSONResponse({{"ok": True}})

app = Starlette(routes=[Route("/", home)])
"""

# True once the reload list shows a newer ok generation of the plugin than `before`, and
# the plugins table has caught up with it.
RELOAD_SHOWN = """({plugin, before}) => {
  const cell = document.querySelector(`#plugins tr[data-plugin="${plugin}"] td.generation`);
  if (!cell || !(Number(cell.textContent) > before)) return false;
  const pattern = new RegExp(`^${plugin.replaceAll(".", "\\\\.")} gen (\\\\d+) ok `);
  return [...document.querySelectorAll("#reloads li")].some((item) => {
    const match = pattern.exec(item.textContent);
    return match !== null && Number(match[1]) > before;
  });
}"""


def replace_line(path: Path, prefix: str, new: str) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(new if x.startswith(prefix) else x for x in lines) + "\n")


def open_dashboard(page: Page, simulator: Any) -> None:
    """Open the one-time link as a developer would, and wait for both streams to be live."""
    response = simulator.get("/internal/debug/dashboard-link", headers=simulator.debug_headers())
    assert response.status_code == 200, (response.status_code, response.text)
    page.goto(response.json()["url"])
    expect(page.locator("#auth-error")).to_be_hidden()
    expect(page.locator("#conn")).to_have_text("live", timeout=LIVE_TIMEOUT_MS)


def test_dashboard_shows_a_reload_live(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, page: Page
) -> None:
    workspace.login()
    plugin = tmp_path / "hello-python"
    shutil.copytree(HELLO_PYTHON, plugin)
    simulator = start_simulator([plugin], "--watch")
    open_dashboard(page, simulator)
    generation = page.locator(f'#plugins tr[data-plugin="{PY_ID}"] td.generation')
    expect(generation).to_have_text(re.compile(r"^\d+$"))
    before = int(generation.inner_text())
    page.evaluate("() => { window.__sameDocument = true; }")

    replace_line(plugin / "app.py", "GREETING =", 'GREETING = "hello from the dashboard test"')

    page.wait_for_function(RELOAD_SHOWN, arg={"plugin": PY_ID, "before": before}, timeout=15_000)
    assert page.evaluate("() => window.__sameDocument") is True, "the page was reloaded"
    assert "hello from the dashboard test" in simulator.get(f"/plugins/{PY_ID}/").text
    expect(page.locator("#latency-chart .point").first).to_be_attached()
    expect(page.locator("#failure-rate")).to_contain_text("reloads failed")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    screenshot = OUTPUT / "reload-live.png"
    page.screenshot(path=screenshot, full_page=True)
    assert screenshot.stat().st_size > 0


def test_dashboard_without_key_is_refused(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = tmp_path / "hello-python"
    shutil.copytree(HELLO_PYTHON, plugin)
    simulator = start_simulator([plugin])

    response = simulator.get("/dashboard")

    assert response.status_code == 401, response.text
    assert "powerx host status" in response.text


def test_dashboard_escapes_plugin_logs(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, page: Page
) -> None:
    workspace.login()
    plugin = write_plugin(tmp_path / "loud", python_manifest("com.test.loud"), {"app.py": LOUD_APP})
    simulator = start_simulator([plugin])
    open_dashboard(page, simulator)

    assert simulator.get("/plugins/com.test.loud/").status_code == 200

    line = page.locator("#logs .log", has_text=PAYLOAD).first
    expect(line).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#logs img")).to_have_count(0)
    page.wait_for_timeout(300)  # an injected image would have failed to load by now
    assert page.evaluate("() => typeof window.__pwned") == "undefined"


def test_dashboard_debug_panel_shows_snapshots_masked(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, page: Page
) -> None:
    from tests.integration.test_debugging import APP, PLUGIN, RETURN_LINE

    workspace.login()
    plugin = write_plugin(tmp_path / "debugged", python_manifest(PLUGIN), {"app.py": APP})
    simulator = start_simulator([plugin])
    open_dashboard(page, simulator)
    put = simulator.request(
        "PUT",
        f"/internal/debug/breakpoints/{PLUGIN}",
        json={"breakpoints": [{"file": "app.py", "line": RETURN_LINE, "kind": "snapshot"}]},
        headers=simulator.debug_headers(),
    )
    assert put.status_code == 200, put.text
    assert simulator.get(f"/plugins/{PLUGIN}/?name=dash").status_code == 200
    entry = page.locator("#debug li").first
    expect(entry).to_contain_text(f"snapshot at app.py:{RETURN_LINE}", timeout=LIVE_TIMEOUT_MS)
    expect(entry).to_contain_text("message = 'v0 dash'")
    assert "hunter2" not in page.locator("#debug").inner_text()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=OUTPUT / "debug-snapshot.png", full_page=True)


def test_dashboard_shows_stale_and_failed_plugins_with_the_reason(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, page: Page
) -> None:
    """A plugin that never started is red with why; one whose last build failed is yellow
    (stale) with the error, until a save fixes it."""
    workspace.login()
    plugin = tmp_path / "hello-python"
    shutil.copytree(HELLO_PYTHON, plugin)
    bad = write_plugin(
        tmp_path / "bad", python_manifest("com.test.bad"), {"app.py": "import notinstalled\n"}
    )
    simulator = start_simulator([plugin, bad], "--watch")
    open_dashboard(page, simulator)
    failed = page.locator('#plugins tr[data-plugin="com.test.bad"]')
    expect(failed.locator(".badge")).to_have_text("failed")
    expect(failed.locator(".badge")).to_have_class(re.compile(r"\bbad\b"))
    expect(failed.locator(".why")).to_contain_text("module_not_found")
    expect(failed.locator(".why")).to_contain_text("notinstalled")

    app = plugin / "app.py"
    good = app.read_text()
    broken = good.replace('GREETING = "hello from python"', "GREETING = (")

    def state() -> object:
        return next(p for p in simulator.status()["plugins"] if p["id"] == PY_ID)["state"]

    app.write_text(broken)  # the watchers were armed before start_simulator returned
    assert wait_until(lambda: state() == "stale", timeout_s=30)
    row = page.locator(f'#plugins tr[data-plugin="{PY_ID}"]')
    expect(row.locator(".badge")).to_have_text("stale", timeout=LIVE_TIMEOUT_MS)
    expect(row.locator(".badge")).to_have_class(re.compile(r"\bwarn\b"))
    expect(row.locator(".why")).to_contain_text("generation 1 serves older code")
    expect(row.locator(".why")).to_contain_text("build_failed")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=OUTPUT / "stale-and-failed.png", full_page=True)

    app.write_text(good.replace("hello from python", "fixed"))
    assert wait_until(lambda: state() == "running", timeout_s=30)
    expect(row.locator(".badge")).to_have_text("running", timeout=LIVE_TIMEOUT_MS)
    expect(row.locator(".why")).to_have_count(0)


@pytest.mark.parametrize("sandbox", ["auto", "off"])
def test_dashboard_says_whether_plugins_are_contained(
    workspace: Workspace, start_simulator: Any, page: Page, sandbox: str
) -> None:
    workspace.login()
    workspace.env["POWERX_SANDBOX"] = sandbox
    simulator = start_simulator([HELLO_PYTHON])
    open_dashboard(page, simulator)
    badge = page.locator("#host-containment")
    if sandbox == "auto":
        expect(badge).to_have_text("contained")
        expect(badge).to_have_class(re.compile(r"\bgood\b"))
    else:
        expect(badge).to_have_text("not contained")
        expect(badge).to_have_class(re.compile(r"\bbad\b"))
        expect(badge).to_have_attribute("title", re.compile("turned off"))
