"""A plugin whose last reload failed never looks healthy: status, `host status` and each
response say it serves stale code, until a later reload (or rollback) succeeds."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from powerx.client.dev import SimulatorClient
from powerx.errors import PowerXError
from powerx.reload.executor import PluginLoop, ReloadOutcome
from powerx.reload.watcher import WatchPlan
from powerx.testing import wait_until
from tests.conftest import (
    HELLO_PYTHON,
    RunningSimulator,
    Workspace,
    python_manifest,
    write_plugin,
)
from tests.integration.test_hot_reload import (
    CRASH_LATER,
    copy_example,
    plugin_status,
    push,
    set_python_greeting,
)

PY_ID = "com.example.hello-python"
STALE = "x-powerx-stale"


def report_failure(simulator: RunningSimulator, plugin: str, **fields: object) -> None:
    """What the dev loop sends when a build fails before anything is uploaded."""
    body = {"kind": "failure", "plugin": plugin, "reason": "build_failed", **fields}
    response = simulator.request(
        "POST", "/internal/debug/telemetry", json=[body], headers=simulator.debug_headers()
    )
    assert response.status_code == 202, response.text


def break_at_import(plugin: Path) -> None:
    app = plugin / "app.py"
    lines = app.read_text().splitlines()
    app.write_text("\n".join([*lines[:5], "raise ValueError('broken at import')", *lines[5:]]))


def test_a_failed_upload_marks_the_plugin_stale_until_a_reload_succeeds(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = copy_example(HELLO_PYTHON, tmp_path / "p")
    simulator = start_simulator([plugin])
    assert STALE not in simulator.get(f"/plugins/{PY_ID}/").headers
    good = (plugin / "app.py").read_text()
    break_at_import(plugin)
    assert push(simulator, plugin).status_code == 422

    status = plugin_status(simulator, PY_ID)
    assert status["state"] == "stale" and status["generation"] == 1
    failure = status["failure"]
    assert failure["code"] == "plugin_start_failed" and failure["origin"] == "server"
    assert "broken at import" in failure["message"] and failure["fix"]
    assert failure["serving_generation"] == 1 and failure["at"] > 0
    response = simulator.get(f"/plugins/{PY_ID}/")
    assert response.status_code == 200
    assert response.headers[STALE] == "plugin_start_failed; serving generation 1"

    text = workspace.powerx("host", "status")
    assert text.returncode == 0, text.stderr
    row = next(line for line in text.stdout.splitlines() if line.startswith(f" {PY_ID}"))
    assert "stale" in row and "running" not in row
    assert f"{PY_ID} is stale: generation 1 serves code older than the last save" in text.stdout
    assert "plugin_start_failed" in text.stdout and "broken at import" in text.stdout

    (plugin / "app.py").write_text(good)
    set_python_greeting(plugin, "fixed")
    assert push(simulator, plugin).status_code == 200
    status = plugin_status(simulator, PY_ID)
    assert status["state"] == "running" and status["failure"] is None
    response = simulator.get(f"/plugins/{PY_ID}/")
    assert response.json()["greeting"] == "fixed" and STALE not in response.headers
    assert "stale" not in workspace.powerx("host", "status").stdout


def test_a_build_failure_the_dev_loop_reports_marks_the_plugin_stale(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    """The simulator never saw the broken build; the dev loop's failure report tells it.
    Pushing again what already serves ("unchanged") means the save took: not stale."""
    workspace.login()
    plugin = copy_example(HELLO_PYTHON, tmp_path / "p")
    simulator = start_simulator([plugin])
    report_failure(
        simulator, PY_ID, message="Syntax error in app.py:10", fix="fix the code at that line."
    )
    failure = plugin_status(simulator, PY_ID)["failure"]
    assert plugin_status(simulator, PY_ID)["state"] == "stale"
    assert failure["code"] == "build_failed" and failure["origin"] == "client"
    assert failure["message"] == "Syntax error in app.py:10"
    assert failure["fix"] == "fix the code at that line."
    assert simulator.get(f"/plugins/{PY_ID}/").headers[STALE] == (
        "build_failed; serving generation 1"
    )
    reloads = simulator.get(
        "/internal/debug/telemetry/reloads", headers=simulator.debug_headers()
    ).json()["reloads"]
    assert [(r["status"], r["reason"], r["generation"]) for r in reloads] == [
        ("failed", "build_failed", 1)
    ]

    assert push(simulator, plugin).json()["status"] == "unchanged"
    assert plugin_status(simulator, PY_ID)["state"] == "running"
    assert STALE not in simulator.get(f"/plugins/{PY_ID}/").headers


def test_a_rollback_ends_staleness(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    """Serving an artefact the developer named is not stale, even the one that served
    when the reload failed."""
    workspace.login()
    plugin = copy_example(HELLO_PYTHON, tmp_path / "p")
    simulator = start_simulator([plugin])
    set_python_greeting(plugin, "second")
    second = push(simulator, plugin).json()["digest"]
    report_failure(simulator, PY_ID, message="Syntax error in app.py:10")
    assert plugin_status(simulator, PY_ID)["state"] == "stale"
    assert workspace.powerx("host", "rollback", PY_ID).returncode == 0
    assert workspace.powerx("host", "rollback", PY_ID, "--to", second[:12]).returncode == 0
    status = plugin_status(simulator, PY_ID)
    assert status["digest"] == second
    assert status["state"] == "running" and status["failure"] is None
    assert STALE not in simulator.get(f"/plugins/{PY_ID}/").headers


def test_a_restart_after_a_crash_still_serves_stale_code(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    """The same artefact in a new generation is as stale as before; the header names the
    generation that answers."""
    workspace.login()
    plugin = write_plugin(
        tmp_path / "crashy", python_manifest("com.test.crashy"), {"app.py": CRASH_LATER}
    )
    simulator = start_simulator([plugin])
    report_failure(simulator, "com.test.crashy", message="Syntax error in app.py:3")
    simulator.get("/plugins/com.test.crashy/die")
    assert wait_until(
        lambda: (
            plugin_status(simulator, "com.test.crashy")["generation"] == 2
            and plugin_status(simulator, "com.test.crashy")["state"] != "crashed"
        ),
        timeout_s=15,
    )
    assert plugin_status(simulator, "com.test.crashy")["state"] == "stale"
    response = simulator.get("/plugins/com.test.crashy/")
    assert response.text == "alive"
    assert response.headers[STALE] == "build_failed; serving generation 2"


def test_a_plugin_whose_first_upload_failed_is_listed_as_failed(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    simulator = start_simulator([copy_example(HELLO_PYTHON, tmp_path / "p")])
    broken = write_plugin(
        tmp_path / "broken",
        python_manifest("com.test.broken"),
        {"app.py": "import notinstalled\n"},
    )
    assert push(simulator, broken).status_code == 422
    report_failure(simulator, "com.test.unbuilt", message="Syntax error in app.py:1")

    plugins = {p["id"]: p for p in simulator.status()["plugins"]}  # type: ignore[union-attr]
    assert plugins[PY_ID]["state"] == "running"
    for plugin_id, code in [
        ("com.test.broken", "module_not_found"),
        ("com.test.unbuilt", "build_failed"),
    ]:
        assert plugins[plugin_id]["state"] == "failed"
        assert plugins[plugin_id]["failure"]["code"] == code
        assert plugins[plugin_id]["generation"] is None
        response = simulator.get(f"/plugins/{plugin_id}/")
        assert response.status_code == 503
        assert response.json()["error"] == "plugin_unavailable"
        assert code in response.json()["message"]
    assert "notinstalled" in plugins["com.test.broken"]["failure"]["message"]
    text = workspace.powerx("host", "status").stdout
    assert "com.test.broken is not serving: it never started" in text
    assert "com.test.unbuilt is not serving: it never started" in text


class Silent:
    """A dev-loop reporter that prints nothing."""

    def watching(self, plan: WatchPlan) -> None:
        pass

    def reloaded(self, outcome: ReloadOutcome) -> None:
        pass

    def alert(self, state: str, alert: dict[str, Any]) -> None:
        pass


def test_a_good_reload_right_after_a_failed_build_is_not_shown_stale(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    """The dev loop's failure report reaches the simulator before the next upload, so it
    never lands after the success that ended it."""
    workspace.login()
    plugin = copy_example(HELLO_PYTHON, tmp_path / "p")
    simulator = start_simulator([plugin])

    def failure_recorded() -> bool:
        reloads = simulator.get(
            "/internal/debug/telemetry/reloads", headers=simulator.debug_headers()
        ).json()["reloads"]
        return any(r["reason"] == "build_failed" for r in reloads)

    async def fail_then_reload() -> tuple[ReloadOutcome, ReloadOutcome]:
        client = SimulatorClient(simulator.url, workspace.token())
        loop = PluginLoop(plugin, client, tmp_path / "build", Silent())
        try:
            error = PowerXError("build_failed", "Syntax error in app.py:10", "fix it.")
            failed = await loop.reload_once(["app.py"], time.perf_counter(), error)
            good = await loop.reload_once(["app.py"], time.perf_counter())
            # In a thread: the loop runs (the report goes out from it) while this polls.
            await asyncio.to_thread(wait_until, failure_recorded, 10, what="a build_failed")
        finally:
            loop.close()
            await client.close()
        return failed, good

    failed, good = asyncio.run(fail_then_reload())
    assert not failed.ok and good.ok and good.status == "unchanged"
    status = plugin_status(simulator, PY_ID)
    assert status["state"] == "running" and status["failure"] is None
