"""The IDE side: a DAP client attaches once to the plugin's stable debug port and keeps its
breakpoint through ten reloads, as VS Code does.

The client here is written for the test, independently of ``powerx.debug.dap``: raw
sockets, its own framing, a reader thread, so a bug in our codec cannot hide itself.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from pathlib import Path
from typing import Any

from powerx.bundling import BuildSession
from powerx.testing import wait_until
from tests.conftest import RunningSimulator, Workspace, python_manifest, write_plugin
from tests.integration.test_debugging import (
    PLUGIN,
    RETURN_LINE,
    Debug,
    debugged,  # noqa: F401 - the fixture
    edit,
    request_in_background,
)
from tests.integration.test_hot_reload import push


class DapTestClient:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.seq = 0
        self.responses: dict[int, dict[str, Any]] = {}
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen_events: list[str] = []
        self.lock = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\r\n\r\n" in buffer:
                header, rest = buffer.split(b"\r\n\r\n", 1)
                length = int(header.split(b":")[1])
                if len(rest) < length:
                    break
                message, buffer = json.loads(rest[:length]), rest[length:]
                if message["type"] == "response":
                    with self.lock:
                        self.responses[message["request_seq"]] = message
                        self.lock.notify_all()
                elif message["type"] == "event":
                    self.seen_events.append(message["event"])
                    self.events.put(message)

    def request(self, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        self.seq += 1
        seq = self.seq
        body = json.dumps(
            {"seq": seq, "type": "request", "command": command, "arguments": arguments or {}}
        ).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        with self.lock:
            assert self.lock.wait_for(lambda: seq in self.responses, timeout=30), command
            response = self.responses.pop(seq)
        assert response["success"], response
        return dict(response.get("body") or {})

    def event(self, name: str, timeout_s: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            message = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            if message["event"] == name:
                return dict(message.get("body") or {})


def secret(simulator: RunningSimulator, plugin: str) -> str:
    """The debug port's secret, which launch.json passes in the attach arguments."""
    return str(simulator.ide_access(plugin)["secret"])


def test_an_ide_attached_once_stops_at_its_breakpoint_after_each_of_ten_reloads(
    debugged: tuple[RunningSimulator, Path],  # noqa: F811
    workspace: Workspace,
) -> None:
    simulator, plugin = debugged
    [status] = simulator.status()["plugins"]
    port = status["debug_port"]
    assert isinstance(port, int)
    ide = DapTestClient(port)
    capabilities = ide.request("initialize", {"adapterID": "python", "linesStartAt1": True})
    assert capabilities["supportsConditionalBreakpoints"] is True
    ide.request("attach", {"justMyCode": True, "powerxToken": secret(simulator, PLUGIN)})
    ide.event("initialized")  # configuration may follow once the attach is let in
    local_file = str(plugin / "app.py")
    placed = ide.request(
        "setBreakpoints",
        {"source": {"path": local_file}, "breakpoints": [{"line": RETURN_LINE}]},
    )["breakpoints"]
    assert placed[0]["verified"] is True
    breakpoint_id = placed[0]["id"]
    ide.request("configurationDone")

    session = BuildSession(plugin, workspace.state_dir / "test-build")
    try:
        for version in range(1, 11):
            edit(plugin, f'GREETING = "v{version - 1}"', f'GREETING = "v{version}"')
            assert push(simulator, plugin, session).status_code == 200
            thread, result = request_in_background(simulator, f"/plugins/{PLUGIN}/?name=ide")
            stopped = ide.event("stopped")
            assert stopped["reason"] == "breakpoint"
            assert stopped["hitBreakpointIds"] == [breakpoint_id]  # stable across reloads
            [frame, *_] = ide.request("stackTrace", {"threadId": stopped["threadId"]})[
                "stackFrames"
            ]
            assert frame["line"] == RETURN_LINE
            assert frame["source"]["path"] == local_file  # the IDE's own path, not the run dir
            scopes = ide.request("scopes", {"frameId": frame["id"]})["scopes"]
            local_scope = next(s for s in scopes if s["name"].lower() == "locals")
            variables = ide.request(
                "variables", {"variablesReference": local_scope["variablesReference"]}
            )["variables"]
            values = {v["name"]: v["value"] for v in variables}
            assert values["message"] == f"'v{version} ide'"
            evaluated = ide.request(
                "evaluate", {"expression": "name.upper()", "frameId": frame["id"]}
            )
            assert evaluated["result"] == "'IDE'"
            ide.request("continue", {"threadId": stopped["threadId"]})
            thread.join(30)
            assert result["response"].json()["message"] == f"v{version} ide"
    finally:
        session.close()
    # The generations came and went; the IDE never saw one end.
    assert "terminated" not in ide.seen_events and "exited" not in ide.seen_events
    assert "invalidated" in ide.seen_events
    ide.request("disconnect", {"terminateDebuggee": False})
    # Detached: the breakpoint stays (it is the simulator's), but nothing halts any more.
    assert simulator.get(f"/plugins/{PLUGIN}/").status_code == 200


def test_breakpoints_outside_the_plugin_are_unverified_with_a_reason(
    debugged: tuple[RunningSimulator, Path],  # noqa: F811
    tmp_path: Path,
) -> None:
    simulator, _ = debugged
    [status] = simulator.status()["plugins"]
    ide = DapTestClient(status["debug_port"])
    ide.request("initialize", {"adapterID": "python"})
    ide.request("attach", {"justMyCode": True, "powerxToken": secret(simulator, PLUGIN)})
    placed = ide.request(
        "setBreakpoints",
        {"source": {"path": str(tmp_path / "elsewhere.py")}, "breakpoints": [{"line": 3}]},
    )["breakpoints"]
    assert placed[0]["verified"] is False and "not part of the plugin" in placed[0]["message"]
    ide.request("disconnect", {})


BOOM_APP = """\
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def boom(request):
    try:
        number = int(request.query_params.get("n", "x"))
    except ValueError:
        number = -1
    return JSONResponse({"number": number})


app = Starlette(routes=[Route("/", boom)])
"""


def test_exception_settings_from_the_ide_are_replayed_into_new_generations(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = write_plugin(tmp_path / "boom", python_manifest("com.test.boom"), {"app.py": BOOM_APP})
    simulator: RunningSimulator = start_simulator([plugin])
    [status] = simulator.status()["plugins"]
    ide = DapTestClient(status["debug_port"])
    capabilities = ide.request("initialize", {"adapterID": "python"})
    assert {f["filter"] for f in capabilities["exceptionBreakpointFilters"]} >= {"raised"}
    ide.request("attach", {"justMyCode": True, "powerxToken": secret(simulator, "com.test.boom")})
    ide.request("setExceptionBreakpoints", {"filters": ["raised"]})
    ide.request("configurationDone")
    for _ in range(2):  # the generation the IDE attached to, then one after a reload
        thread, result = request_in_background(simulator, "/plugins/com.test.boom/?n=x")
        stopped = ide.event("stopped")
        assert stopped["reason"] == "exception"
        [frame, *_] = ide.request("stackTrace", {"threadId": stopped["threadId"]})["stackFrames"]
        assert frame["source"]["path"] == str(plugin / "app.py") and frame["line"] == 8
        ide.request("continue", {"threadId": stopped["threadId"]})
        thread.join(30)
        assert result["response"].json() == {"number": -1}
        with (plugin / "app.py").open("a") as source:
            source.write("# edited\n")  # a new artefact, so a new generation
        reloaded = push(simulator, plugin)
        assert reloaded.status_code == 200 and reloaded.json()["status"] == "ok"
    ide.request("disconnect", {})


PARSE_APP = """\
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


def parse(text):
    return int(text)


async def boom(request):
    return JSONResponse({"number": parse(request.query_params.get("n", "0"))})


app = Starlette(routes=[Route("/", boom)])
"""


def test_function_breakpoints_from_the_ide_are_replayed_into_new_generations(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    # debugpy stops at plain functions by name; it does not stop at `async def` ones.
    plugin = write_plugin(
        tmp_path / "boom", python_manifest("com.test.boom"), {"app.py": PARSE_APP}
    )
    simulator: RunningSimulator = start_simulator([plugin])
    [status] = simulator.status()["plugins"]
    ide = DapTestClient(status["debug_port"])
    capabilities = ide.request("initialize", {"adapterID": "python"})
    assert capabilities["supportsFunctionBreakpoints"] is True
    ide.request("attach", {"justMyCode": True, "powerxToken": secret(simulator, "com.test.boom")})
    placed = ide.request("setFunctionBreakpoints", {"breakpoints": [{"name": "parse"}]})
    assert placed["breakpoints"] == [{"verified": True}]
    ide.request("configurationDone")
    generations = []
    for number in range(3):  # the generation the IDE attached to, then two after reloads
        thread, result = request_in_background(simulator, f"/plugins/com.test.boom/?n={number}")
        stopped = ide.event("stopped")
        assert stopped["reason"] == "function breakpoint"
        [frame, *_] = ide.request("stackTrace", {"threadId": stopped["threadId"]})["stackFrames"]
        assert frame["name"] == "parse" and frame["source"]["path"] == str(plugin / "app.py")
        ide.request("continue", {"threadId": stopped["threadId"]})
        thread.join(30)
        assert result["response"].json() == {"number": number}
        generations.append(result["response"].headers["x-powerx-generation"])
        with (plugin / "app.py").open("a") as source:
            source.write("# edited\n")
        reloaded = push(simulator, plugin)
        assert reloaded.status_code == 200 and reloaded.json()["status"] == "ok"
    assert len(set(generations)) == 3
    # Cleared in the IDE: cleared in the serving generation and in the ones after it.
    assert ide.request("setFunctionBreakpoints", {"breakpoints": []}) == {"breakpoints": []}
    assert simulator.get("/plugins/com.test.boom/?n=7").json() == {"number": 7}
    ide.request("disconnect", {})


def test_a_dropped_ide_socket_detaches_it_and_a_paused_request_goes_on(
    debugged: tuple[RunningSimulator, Path],  # noqa: F811
) -> None:
    simulator, plugin = debugged
    debug = Debug(simulator)
    [status] = simulator.status()["plugins"]
    ide = DapTestClient(status["debug_port"])
    ide.request("initialize", {"adapterID": "python"})
    ide.request("attach", {"justMyCode": True, "powerxToken": secret(simulator, PLUGIN)})
    ide.event("initialized")
    ide.request(
        "setBreakpoints",
        {"source": {"path": str(plugin / "app.py")}, "breakpoints": [{"line": RETURN_LINE}]},
    )
    ide.request("configurationDone")
    thread, result = request_in_background(simulator, f"/plugins/{PLUGIN}/?name=dropped")
    ide.event("stopped")
    assert debug.state()["clients"] == 1
    # The IDE went away without a disconnect request (its process died).
    ide.sock.shutdown(socket.SHUT_RDWR)
    ide.sock.close()
    wait_until(debug.state, 10, accept=lambda s: s["clients"] == 0, what="no client attached")
    thread.join(10)
    assert result["response"].json()["message"] == "v0 dropped"
    started = time.monotonic()
    assert simulator.get(f"/plugins/{PLUGIN}/").status_code == 200
    assert time.monotonic() - started < 1.0


UNCAUGHT_APP = """\
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def fine(request):
    return JSONResponse({"fine": True})


async def boom(request):
    raise RuntimeError("the plugin's own bug")


app = Starlette(routes=[Route("/", fine), Route("/boom", boom)])
"""


def test_an_uncaught_plugin_exception_stops_once_in_the_plugin_and_other_requests_answer(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    """User Uncaught Exceptions: one stop, in the plugin's frame; never in the shim's;
    a request that arrives during the stop gets its answer once the user continues."""
    workspace.login()
    plugin_id = "com.test.uncaught"
    plugin = write_plugin(
        tmp_path / "uncaught", python_manifest(plugin_id), {"app.py": UNCAUGHT_APP}
    )
    simulator: RunningSimulator = start_simulator([plugin])
    [status] = simulator.status()["plugins"]
    ide = DapTestClient(status["debug_port"])
    ide.request("initialize", {"adapterID": "python"})
    ide.request("attach", {"justMyCode": True, "powerxToken": secret(simulator, plugin_id)})
    ide.request("setExceptionBreakpoints", {"filters": ["userUnhandled"]})
    ide.request("configurationDone")
    thread, result = request_in_background(simulator, f"/plugins/{plugin_id}/boom")
    stopped = ide.event("stopped")
    assert stopped["reason"] == "exception"
    frames = ide.request("stackTrace", {"threadId": stopped["threadId"]})["stackFrames"]
    assert frames[0]["source"]["path"] == str(plugin / "app.py") and frames[0]["line"] == 11
    assert not [f for f in frames if "powerx" in str((f.get("source") or {}).get("path"))]
    other, answer = request_in_background(simulator, f"/plugins/{plugin_id}/")
    ide.request("continue", {"threadId": stopped["threadId"]})
    thread.join(30)  # a second stop (in the shim) would hold it
    assert result["response"].status_code == 500
    other.join(30)
    assert answer["response"].status_code == 200, answer["response"].text
    assert answer["response"].json() == {"fine": True}
    ide.request("disconnect", {})
