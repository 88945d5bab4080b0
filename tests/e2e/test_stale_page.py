"""A failed reload is visible in the browser: a page of a plugin whose last save did not
reload is replaced by an error page (why, where, the fix, the serving generation) that
reloads itself, and shows the plugin again once a save reloads cleanly; API clients keep
getting the serving generation's answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from powerx.testing import wait_until
from tests.conftest import Workspace, python_manifest, write_plugin
from tests.e2e.browser import chromium_path_fixture, page_fixture  # noqa: F401  (fixtures)
from tests.e2e.test_dashboard import OUTPUT

PLUGIN = "com.test.page"
APP = """
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

GREETING = "GREETING_VALUE"


async def page(request):
    return HTMLResponse(f"<h1 id='greeting'>{GREETING}</h1>")


async def api(request):
    return JSONResponse({"greeting": GREETING})


app = Starlette(routes=[Route("/", page), Route("/api", api)])
"""
# Plugin text in the reason must show as text, never run.
BROKEN = 'raise RuntimeError("<img src=x onerror=window.__pwned=1>")\n'


def write_app(plugin: Path, line: str) -> None:
    (plugin / "app.py").write_text(APP.replace('GREETING = "GREETING_VALUE"\n', line))


def test_a_broken_save_shows_an_error_page_until_a_fix_shows_the_page_again(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, page: Page
) -> None:
    workspace.login()
    plugin = write_plugin(tmp_path / "page", python_manifest(PLUGIN), {})
    write_app(plugin, 'GREETING = "first"\n')
    simulator = start_simulator([plugin], "--watch")
    url = f"{simulator.url}/plugins/{PLUGIN}/"
    page.goto(url)
    expect(page.locator("#greeting")).to_have_text("first")

    def state() -> object:
        return simulator.plugin_status(PLUGIN)["state"]

    write_app(plugin, BROKEN)
    assert wait_until(lambda: state() == "stale", timeout_s=30)
    page.goto(url)
    expect(page.locator("#reload-failed")).to_contain_text(PLUGIN)
    expect(page.locator("#reason")).to_contain_text("app.py")
    expect(page.locator("#reason")).to_contain_text("<img src=x onerror")  # shown as text
    expect(page.locator("body")).to_contain_text("Serving generation 1")
    assert page.evaluate("() => window.__pwned") is None
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=OUTPUT / "reload-failed-page.png", full_page=True)

    api = httpx.get(f"{url}api", headers={"accept": "application/json"}, trust_env=False)
    assert api.status_code == 200 and api.json() == {"greeting": "first"}
    assert api.headers["x-powerx-stale"].endswith("serving generation 1")
    browser_json = httpx.get(f"{url}api", headers={"accept": "text/html"}, trust_env=False)
    assert browser_json.json() == {"greeting": "first"}  # not a page: left as it is

    write_app(plugin, 'GREETING = "fixed"\n')
    # No reload by the test: the error page reloads itself.
    expect(page.locator("#greeting")).to_have_text("fixed", timeout=30_000)
