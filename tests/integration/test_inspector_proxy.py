"""The stable inspector endpoint of a Node plugin, as VS Code's js-debug uses it: discover
the target, attach over WebSocket, get dropped on a reload, reconnect to the new
generation on the same address."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import HELLO_NODE, RunningSimulator, Workspace
from tests.integration.test_debugging import NODE_PLUGIN
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
