"""A plugin's local settings and secrets (.dev.vars beside its manifest): they reach the
plugin's environment, an edit applies without a code change, and a secret value never
lands in a log, an event, an audit row, telemetry, the artefact or the terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from powerx.bundling.session import BuildSession
from tests.conftest import RunningSimulator, Workspace, python_manifest, write_plugin
from tests.integration.test_hot_reload import push

PLUGIN = "com.test.settings"
SECRET = "s3cr3t-Value-9f2c"
APP = """
import logging
import os

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def home(request):
    secret = os.environ["API_SECRET"]
    print("calling upstream with", secret, flush=True)
    logging.getLogger("plugin").warning("key=%s", secret)
    return JSONResponse({"region": os.environ["REGION"], "length": len(secret)})


async def boom(request):
    raise RuntimeError("upstream refused " + os.environ["API_SECRET"])


app = Starlette(routes=[Route("/", home), Route("/boom", boom)])
"""


def settings_plugin(tmp_path: Path) -> Path:
    plugin = write_plugin(tmp_path / "settings", python_manifest(PLUGIN), {"app.py": APP})
    (plugin / ".dev.vars").write_text(f'API_SECRET="{SECRET}"\nREGION=eu\n# a comment\n')
    (plugin / ".dev.vars.developer").write_text("REGION=eu-developer\nPOWERX_TENANT=evil\n")
    return plugin


def every_stored_byte(state_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in state_dir.rglob("*") if p.is_file())


def test_settings_reach_the_plugin_and_the_secret_is_masked_everywhere(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = settings_plugin(tmp_path)
    simulator: RunningSimulator = start_simulator([plugin])
    answer = simulator.get(f"/plugins/{PLUGIN}/")
    assert answer.status_code == 200, answer.text
    # The identity's file over the shared one; a name powerx sets is not taken from it.
    assert answer.json() == {"region": "eu-developer", "length": len(SECRET)}
    assert simulator.get(f"/plugins/{PLUGIN}/boom").status_code == 500
    logs = workspace.powerx("logs", PLUGIN, "--json")
    assert logs.returncode == 0, logs.stderr
    assert "calling upstream with ***" in logs.stdout and "upstream refused ***" in logs.stdout
    assert ".dev.vars: POWERX_TENANT ignored (set by powerx)" in simulator.output()
    simulator.stop()  # everything flushed to disk
    assert SECRET.encode() not in every_stored_byte(workspace.state_dir)
    assert SECRET not in simulator.output()
    assert "calling upstream with ***" in simulator.output()


def test_the_files_are_never_packed(tmp_path: Path) -> None:
    plugin = settings_plugin(tmp_path)
    (plugin / ".env").write_text(f"OTHER={SECRET}\n")
    session = BuildSession(plugin, tmp_path / "build")
    try:
        artefact = session.build()
    finally:
        session.close()
    assert not [m for m in artefact.members if ".dev.vars" in m or m.endswith(".env")]
    assert SECRET.encode() not in artefact.data


def test_an_edit_of_dev_vars_applies_without_a_code_change(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = settings_plugin(tmp_path)
    (plugin / ".dev.vars.developer").unlink()
    simulator: RunningSimulator = start_simulator([plugin])
    assert simulator.get(f"/plugins/{PLUGIN}/").json()["region"] == "eu"
    session = BuildSession(plugin, workspace.state_dir / "test-build")
    try:
        unchanged = push(simulator, plugin, session)
        assert unchanged.json()["status"] == "unchanged", unchanged.text
        (plugin / ".dev.vars").write_text(f'API_SECRET="{SECRET}"\nREGION=us\n')
        restarted = push(simulator, plugin, session)  # the same artefact, new settings
    finally:
        session.close()
    assert restarted.status_code == 200, restarted.text
    assert restarted.json()["status"] == "ok"
    assert simulator.get(f"/plugins/{PLUGIN}/").json()["region"] == "us"


def test_doctor_lists_the_names_never_the_values(workspace: Workspace, tmp_path: Path) -> None:
    plugin = settings_plugin(tmp_path)
    result = workspace.powerx("doctor", str(plugin), "--json")
    checks = [json.loads(line) for line in result.stdout.splitlines()]
    [settings] = [c for c in checks if c["name"].startswith("settings ")]
    assert settings["status"] == "warn"  # POWERX_TENANT is the simulator's
    assert "API_SECRET" in settings["detail"] and "REGION" in settings["detail"]
    assert "POWERX_TENANT" in settings["detail"]
    assert SECRET not in result.stdout and "eu-developer" not in result.stdout
