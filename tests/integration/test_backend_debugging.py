"""A Python backend plugin (its own server on PORT) under the debugger: the program's
Python loads debugpy at start-up and waits for the breakpoints, so each generation stops
at them from its first request, in the sandbox and outside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from powerx.build import BuildSession
from tests.conftest import EXAMPLES, RunningSimulator, Workspace
from tests.integration.test_backend_plugins import (
    BACKEND_ID,
    HELLO,
    set_greeting,
    set_node_greeting,
)
from tests.integration.test_debugging import Debug, request_in_background
from tests.integration.test_hot_reload import copy_example, push

SERVER = (EXAMPLES / "hello-backend-python" / "server.py").read_text().splitlines()
RETURN_LINE = 1 + next(n for n, line in enumerate(SERVER) if '{"greeting": GREETING' in line)


@pytest.mark.parametrize("sandbox", ["auto", "off"])
def test_a_python_backend_stops_at_its_breakpoint_in_every_generation(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, sandbox: str
) -> None:
    workspace.env["POWERX_SANDBOX"] = sandbox
    workspace.login()
    plugin = copy_example(EXAMPLES / "hello-backend-python", tmp_path / "hello-backend")
    simulator: RunningSimulator = start_simulator([plugin])
    debug = Debug(simulator, BACKEND_ID)
    attached = debug.call("POST", f"/internal/debug/sessions/{BACKEND_ID}/attach")
    assert attached.status_code == 200, attached.text
    response = debug.put({"file": "server.py", "line": RETURN_LINE})
    assert response.status_code == 200, response.text
    [bp] = response.json()["breakpoints"]
    session = BuildSession(plugin, workspace.state_dir / "test-build")
    try:
        for version in range(1, 4):
            set_greeting(plugin, f"v{version}")
            reloaded = push(simulator, plugin, session)
            assert reloaded.status_code == 200, reloaded.text
            assert reloaded.json()["debug"]["verified"] == 1
            thread, result = request_in_background(simulator, HELLO)
            paused = debug.wait_paused()
            assert (paused["file"], paused["line"]) == ("server.py", RETURN_LINE)
            assert paused["generation"] == reloaded.json()["generation"]
            assert paused["breakpoint"] == bp["id"]
            assert debug.command("locals")["locals"]["tenant"] == "'1'"
            assert debug.command("eval", expression="GREETING")["result"] == f"'v{version}'"
            debug.command("continue")
            thread.join(30)
            assert result["response"].status_code == 200, result["response"].text
            assert result["response"].json()["greeting"] == f"v{version}"
    finally:
        session.close()
    assert debug.state()["breakpoints"][0]["hits"] == 3


NODE_ID = "com.example.hello-backend-node"
NODE_SERVER = (EXAMPLES / "hello-backend-node" / "server.js").read_text().splitlines()
NODE_ANSWER_LINE = 1 + next(
    n for n, line in enumerate(NODE_SERVER) if "{ greeting: GREETING, tenant" in line
)


@pytest.mark.parametrize("sandbox", ["auto", "off"])
def test_a_node_backend_stops_at_its_breakpoint_in_every_generation(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, sandbox: str
) -> None:
    workspace.env["POWERX_SANDBOX"] = sandbox
    workspace.login()
    plugin = copy_example(EXAMPLES / "hello-backend-node", tmp_path / "hello-backend-node")
    simulator: RunningSimulator = start_simulator([plugin])
    debug = Debug(simulator, NODE_ID)
    attached = debug.call("POST", f"/internal/debug/sessions/{NODE_ID}/attach")
    assert attached.status_code == 200, attached.text
    response = debug.put({"file": "server.js", "line": NODE_ANSWER_LINE})
    assert response.status_code == 200, response.text
    session = BuildSession(plugin, workspace.state_dir / "test-build")
    try:
        for version in range(1, 4):
            set_node_greeting(plugin, f"v{version}")
            reloaded = push(simulator, plugin, session)
            assert reloaded.status_code == 200, reloaded.text
            assert reloaded.json()["debug"]["verified"] == 1
            thread, result = request_in_background(simulator, f"/_p/{NODE_ID}/api/v1/hello")
            paused = debug.wait_paused()
            assert (paused["file"], paused["line"]) == ("server.js", NODE_ANSWER_LINE)
            assert paused["generation"] == reloaded.json()["generation"]
            assert debug.command("locals")["locals"]["tenant"] == '"1"'
            assert debug.command("eval", expression="GREETING")["result"] == f'"v{version}"'
            debug.command("continue")
            thread.join(30)
            assert result["response"].status_code == 200, result["response"].text
            assert result["response"].json()["greeting"] == f"v{version}"
    finally:
        session.close()
    assert debug.state()["breakpoints"][0]["hits"] == 3


def test_a_program_the_debugger_cannot_load_into_is_refused_with_the_fix(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    """A shell script may start anything: nothing tells which debugger would fit."""
    workspace.login()
    plugin = copy_example(EXAMPLES / "hello-backend-python", tmp_path / "scripted")
    script = plugin / "serve"
    script.write_text('#!/bin/sh\nexec python3 -m http.server --bind 127.0.0.1 "$PORT"\n')
    script.chmod(0o755)
    (plugin / "healthz").write_text("ok\n")
    manifest = plugin / "plugin.yaml"
    manifest.write_text(manifest.read_text().replace("entry: python server.py", "entry: ./serve"))
    simulator: RunningSimulator = start_simulator([plugin])
    debug = Debug(simulator, BACKEND_ID)
    response = debug.put({"file": "server.py", "line": RETURN_LINE})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "debug_runtime_unsupported"
    assert "backend.entry starts python or node" in response.json()["fix"]
