"""The stable inspector endpoint of a Node plugin, as VS Code's js-debug uses it: discover
the target, attach over WebSocket, get dropped on a reload, reconnect to the new
generation on the same address."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from powerx.bundling import BuildSession
from powerx.testing import wait_until
from tests.conftest import HELLO_NODE, REPO, RunningSimulator, Workspace
from tests.integration.test_debugging import (
    NODE_PLUGIN,
    NODE_RETURN_LINE,
    Debug,
    request_in_background,
)
from tests.integration.test_hot_reload import copy_example, push, set_node_greeting


async def evaluate(url: str, expression: str) -> Any:
    async with websockets.connect(url) as inspector:
        await inspector.send(
            json.dumps(
                {"id": 1, "method": "Runtime.evaluate", "params": {"expression": expression}}
            )
        )
        while True:
            message = json.loads(await asyncio.wait_for(inspector.recv(), 10))
            if message.get("id") == 1:
                return message["result"]["result"]["value"]


async def wait_closed_after(url: str, action: Any) -> int | None:
    """Attach, run ``action`` (a reload), and return the close code the endpoint sent."""
    async with websockets.connect(url) as inspector:
        await asyncio.to_thread(action)
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(inspector.recv(), 15)
        return inspector.close_code


def plugin_status(simulator: RunningSimulator) -> dict[str, Any]:
    return next(p for p in simulator.status()["plugins"] if p["id"] == NODE_PLUGIN)  # type: ignore[union-attr]


@pytest.fixture
def node_plugin(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> tuple[RunningSimulator, Path]:
    workspace.login()
    plugin = copy_example(HELLO_NODE, tmp_path / "hello-node")
    return start_simulator([plugin]), plugin


def pid_inside(pid: int) -> int:
    """The pid a process sees for itself (inside its sandbox's PID namespace, if any)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    return pid


def test_the_endpoint_follows_the_serving_generation_across_reloads(
    node_plugin: tuple[RunningSimulator, Path],
) -> None:
    simulator, plugin = node_plugin
    port = plugin_status(simulator)["debug_port"]
    access = simulator.ide_access(NODE_PLUGIN)
    # Discovery as DevTools-style clients do it, under the secret the developer's tools got.
    listing = f"http://127.0.0.1:{port}/{access['secret']}/json/list"
    [target] = httpx.get(listing, trust_env=False).json()
    url = target["webSocketDebuggerUrl"]
    assert url == access["websocket"] == f"ws://127.0.0.1:{port}/{access['secret']}/{NODE_PLUGIN}"
    assert target["devtoolsFrontendUrl"] == access["devtools"]

    # The first attach turns the debugger on: the generation restarts with the inspector.
    first_pid = asyncio.run(evaluate(url, "process.pid"))
    status = plugin_status(simulator)
    assert status["debugging"] is True and first_pid == pid_inside(status["pid"])

    def reload() -> None:
        set_node_greeting(plugin, "after the reload")
        assert push(simulator, plugin).status_code == 200

    code = asyncio.run(wait_closed_after(url, reload))
    assert code == 1012  # "service restart": js-debug with `restart` reconnects
    second_pid = asyncio.run(evaluate(url, "process.pid"))
    assert second_pid == pid_inside(plugin_status(simulator)["pid"])
    assert plugin_status(simulator)["pid"] != status["pid"]
    assert simulator.get(f"/plugins/{NODE_PLUGIN}/").json()["greeting"] == "after the reload"


def test_vscode_configuration_for_a_node_plugin_uses_the_endpoint(
    node_plugin: tuple[RunningSimulator, Path], workspace: Workspace
) -> None:
    simulator, _ = node_plugin
    result = workspace.powerx("debug", "vscode", NODE_PLUGIN)
    assert result.returncode == 0, result.stderr
    [entry] = json.loads(result.stdout)["configurations"]
    assert entry["type"] == "node" and entry["request"] == "attach" and entry["restart"]
    # js-debug cannot send headers: the secret is in the WebSocket path it attaches to.
    port = plugin_status(simulator)["debug_port"]
    secret = simulator.ide_access(NODE_PLUGIN)["secret"]
    assert entry["websocketAddress"] == f"ws://127.0.0.1:{port}/{secret}/{NODE_PLUGIN}"
    assert "Chrome DevTools: devtools://devtools/bundled/js_app.html?ws=" in result.stderr
    # And what it prints attaches (the first attach restarts the generation, debugging).
    pid = asyncio.run(evaluate(entry["websocketAddress"], "process.pid"))
    assert pid == pid_inside(plugin_status(simulator)["pid"])


def _js_debug_like_client() -> Any:
    """The IDE client of benchmarks/breakpoint_replay.py (its `node-ide` row)."""
    spec = importlib.util.spec_from_file_location(
        "breakpoint_replay", REPO / "benchmarks/breakpoint_replay.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["breakpoint_replay"] = module
    spec.loader.exec_module(module)
    return module.JsDebugLikeClient


def test_an_ide_breakpoint_halts_the_first_request_after_each_of_twenty_reloads(
    node_plugin: tuple[RunningSimulator, Path], workspace: Workspace
) -> None:
    """VS Code's breakpoints are in its own inspector session, which a reload closes; the
    request sent right after the reload answers must still halt, before the IDE is back."""
    simulator, plugin = node_plugin
    access = simulator.ide_access(NODE_PLUGIN)
    ide = _js_debug_like_client()(access["websocket"], plugin / "src/index.ts", NODE_RETURN_LINE)
    debug = Debug(simulator, NODE_PLUGIN)
    ide.connect()
    # One set, whichever tool set it: the IDE's breakpoint is listed with the console's.
    mirrored = wait_until(lambda: debug.state()["breakpoints"], 10)
    assert [(bp["file"], bp["line"], bp.get("origin")) for bp in mirrored] == [
        ("src/index.ts", NODE_RETURN_LINE, "ide")
    ]
    listed = workspace.powerx("debug", "breakpoints", NODE_PLUGIN, "--json")
    assert json.loads(listed.stdout)["line"] == NODE_RETURN_LINE, listed.stderr
    session = BuildSession(plugin, workspace.state_dir / "test-build")
    halted = 0
    try:
        for version in range(1, 21):
            set_node_greeting(plugin, f"v{version}")
            reloaded = push(simulator, plugin, session)
            assert reloaded.status_code == 200, reloaded.text
            thread, result = request_in_background(simulator, f"/plugins/{NODE_PLUGIN}/")
            paused = wait_until(
                lambda r=result: "response" in r or debug.state()["paused"],
                15,
                what="the request to answer or halt",
            )
            if "response" not in result and paused["generation"] == reloaded.json()["generation"]:
                assert (paused["file"], paused["line"]) == ("src/index.ts", NODE_RETURN_LINE)
                halted += 1
            # The IDE was closed by the reload; it comes back, sees the pause, continues.
            assert ide.wait_closed() == 1012
            ide.connect()
            if "response" not in result:
                assert ide.resume_when_paused()
            thread.join(30)
            assert result["response"].json()["greeting"] == f"v{version}"
    finally:
        session.close()
        ide.close()
    assert halted == 20
    [bp] = debug.state()["breakpoints"]
    assert bp["hits"] == 20  # counted once per halt, though the IDE's own one is there too


def test_the_source_map_carries_the_typescript_for_devtools(tmp_path: Path) -> None:
    """Chrome DevTools opened from the printed URL reads the TypeScript from the map."""
    plugin = copy_example(HELLO_NODE, tmp_path / "hello-node")
    session = BuildSession(plugin, tmp_path / "build")
    try:
        artefact = session.build()
    finally:
        session.close()
    with tarfile.open(fileobj=io.BytesIO(artefact.data)) as archive:
        [member] = [m for m in archive.getmembers() if m.name.endswith(".js.map")]
        source_map = json.loads(archive.extractfile(member).read())  # type: ignore[union-attr]
    sources = dict(zip(source_map["sources"], source_map["sourcesContent"], strict=True))
    index = str((plugin / "src/index.ts").resolve())
    assert sources[index] == (plugin / "src/index.ts").read_text()
