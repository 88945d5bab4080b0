"""Backend plugins (their own server on PORT) under the debugger: the program's first
Python or Node loads the debugger at start-up and waits for the breakpoints, so each
generation stops at them from its first request, in the sandbox and outside it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from powerx.bundling import BuildSession
from tests.conftest import EXAMPLES, RunningSimulator, Workspace
from tests.integration.test_backend_plugins import BACKEND_ID, set_greeting, set_node_greeting
from tests.integration.test_debugging import Debug, request_in_background
from tests.integration.test_hot_reload import copy_example, push


@dataclass(frozen=True)
class Backend:
    """A backend example, the line to stop at, how to save a greeting, how values print."""

    folder: str
    plugin_id: str
    source: str
    stop_at: str  # text on the line that answers
    save: Callable[[Path, str], None]
    quote: str  # how the debugger shows a string: Python 'x', Node "x"

    @property
    def line(self) -> int:
        text = (EXAMPLES / self.folder / self.source).read_text().splitlines()
        return 1 + next(n for n, line in enumerate(text) if self.stop_at in line)

    def shown(self, value: str) -> str:
        return f"{self.quote}{value}{self.quote}"


PYTHON = Backend(
    "hello-backend-python", BACKEND_ID, "server.py", '{"greeting": GREETING', set_greeting, "'"
)
NODE = Backend(
    "hello-backend-node",
    "com.example.hello-backend-node",
    "server.js",
    "{ greeting: GREETING, tenant",
    set_node_greeting,
    '"',
)


@pytest.mark.parametrize("sandbox", ["auto", "off"])
@pytest.mark.parametrize("backend", [PYTHON, NODE], ids=["python", "node"])
def test_a_backend_stops_at_its_breakpoint_in_every_generation(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, sandbox: str, backend: Backend
) -> None:
    workspace.env["POWERX_SANDBOX"] = sandbox
    workspace.login()
    plugin = copy_example(EXAMPLES / backend.folder, tmp_path / backend.folder)
    simulator: RunningSimulator = start_simulator([plugin])
    debug = Debug(simulator, backend.plugin_id)
    attached = debug.call("POST", f"/internal/debug/sessions/{backend.plugin_id}/attach")
    assert attached.status_code == 200, attached.text
    response = debug.put({"file": backend.source, "line": backend.line})
    assert response.status_code == 200, response.text
    [bp] = response.json()["breakpoints"]
    session = BuildSession(plugin, workspace.state_dir / "test-build")
    try:
        for version in range(1, 4):
            backend.save(plugin, f"v{version}")
            reloaded = push(simulator, plugin, session)
            assert reloaded.status_code == 200, reloaded.text
            assert reloaded.json()["debug"]["verified"] == 1
            path = f"/_p/{backend.plugin_id}/api/v1/hello"
            thread, result = request_in_background(simulator, path)
            paused = debug.wait_paused()
            assert (paused["file"], paused["line"]) == (backend.source, backend.line)
            assert paused["generation"] == reloaded.json()["generation"]
            assert paused["breakpoint"] == bp["id"]
            assert debug.command("locals")["locals"]["tenant"] == backend.shown("1")
            greeting = debug.command("eval", expression="GREETING")["result"]
            assert greeting == backend.shown(f"v{version}")
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
    response = debug.put({"file": "server.py", "line": PYTHON.line})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "debug_runtime_unsupported"
    assert "backend.entry starts python or node" in response.json()["fix"]
