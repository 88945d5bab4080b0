"""Breakpoints that survive reloads, with a real simulator, real debugpy in real plugin
generations, driven over the simulator's debug API."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from powerx.bundling import BuildSession
from powerx.testing import wait_until
from tests.conftest import HELLO_NODE, RunningSimulator, Workspace, python_manifest, write_plugin
from tests.integration.test_hot_reload import copy_example, push, set_node_greeting

PLUGIN = "com.test.debugged"
APP = """\
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

GREETING = "v0"


async def home(request):
    name = request.query_params.get("name", "world")
    password = "hunter2-not-for-logs"
    message = f"{GREETING} {name}"
    return JSONResponse({"message": message, "secret_length": len(password)})


app = Starlette(routes=[Route("/", home)])
"""
RETURN_LINE = 12  # `return JSONResponse(...)` in APP


class Debug:
    """The debug API of one plugin, as the console and the IDE proxy use it."""

    def __init__(self, simulator: RunningSimulator, plugin: str = PLUGIN) -> None:
        self.simulator = simulator
        self.plugin = plugin
        self.headers = {**simulator.debug_headers(), "x-powerx-client": "test"}

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return self.simulator.request(method, path, json=body, headers=self.headers)

    def state(self) -> dict[str, Any]:
        response = self.call("GET", f"/internal/debug/sessions/{self.plugin}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def put(self, *breakpoints: dict[str, Any]) -> httpx.Response:
        return self.call(
            "PUT", f"/internal/debug/breakpoints/{self.plugin}", {"breakpoints": list(breakpoints)}
        )

    def command(self, command: str, **arguments: Any) -> dict[str, Any]:
        response = self.call(
            "POST",
            f"/internal/debug/sessions/{self.plugin}/command",
            {"command": command, **arguments},
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def command_error(self, command: str) -> dict[str, Any]:
        response = self.call(
            "POST", f"/internal/debug/sessions/{self.plugin}/command", {"command": command}
        )
        assert response.status_code >= 400, response.text
        return dict(response.json())

    def first_event(self, kind: str, timeout_s: float = 10.0) -> dict[str, Any]:
        """The first event of ``kind`` since the simulator started (replayed from its ring)."""
        url = f"{self.simulator.url}/internal/debug/events"
        params = {"plugin": self.plugin, "type": kind, "last_event_id": "0"}
        timeout = httpx.Timeout(timeout_s)
        with httpx.stream(
            "GET", url, params=params, headers=self.headers, timeout=timeout, trust_env=False
        ) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    return dict(json.loads(line[len("data: ") :]))
        raise AssertionError(f"no {kind} event")

    def wait_paused(self, timeout_s: float = 15.0) -> dict[str, Any]:
        paused = wait_until(self.state, timeout_s, accept=lambda s: s["paused"], what="a pause")
        return dict(paused["paused"])


def request_in_background(
    simulator: RunningSimulator, path: str
) -> tuple[threading.Thread, dict[str, httpx.Response]]:
    result: dict[str, httpx.Response] = {}

    def send() -> None:
        result["response"] = httpx.get(simulator.url + path, timeout=60, trust_env=False)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread, result


def pauses(simulator: RunningSimulator, debug: Debug, paths: list[str]) -> list[bool]:
    """Send the requests one at a time: which of them paused (each pause is continued)?"""
    paused: list[bool] = []
    for path in paths:
        thread, result = request_in_background(simulator, path)
        wait_until(
            lambda r=result: "response" in r or debug.state()["paused"],
            15,
            what=f"{path} to answer or pause",
        )
        paused.append("response" not in result)
        if paused[-1]:
            debug.command("continue")
        thread.join(30)
        assert result["response"].status_code == 200, result["response"].text
    return paused


def edit(plugin: Path, old: str, new: str) -> None:
    app = plugin / "app.py"
    text = app.read_text()
    assert old in text
    app.write_text(text.replace(old, new, 1))


@pytest.fixture
def debugged(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> tuple[RunningSimulator, Path]:
    workspace.login()
    plugin = write_plugin(tmp_path / "debugged", python_manifest(PLUGIN), {"app.py": APP})
    return start_simulator([plugin]), plugin


def test_breakpoint_hits_after_every_one_of_ten_reloads_with_the_right_locals(
    debugged: tuple[RunningSimulator, Path], workspace: Workspace
) -> None:
    simulator, plugin = debugged
    debug = Debug(simulator)
    attached = debug.call("POST", f"/internal/debug/sessions/{PLUGIN}/attach")
    assert attached.status_code == 200, attached.text
    response = debug.put({"file": "app.py", "line": RETURN_LINE})
    assert response.status_code == 200, response.text
    [bp] = response.json()["breakpoints"]
    assert bp["verified"] is True
    session = BuildSession(plugin, workspace.state_dir / "test-build")
    try:
        for version in range(1, 11):
            edit(plugin, f'GREETING = "v{version - 1}"', f'GREETING = "v{version}"')
            reloaded = push(simulator, plugin, session)
            assert reloaded.status_code == 200, reloaded.text
            generation = reloaded.json()["generation"]
            replayed = reloaded.json()["debug"]
            assert (replayed["breakpoints"], replayed["verified"]) == (1, 1)
            thread, result = request_in_background(simulator, f"/plugins/{PLUGIN}/?name=ada")
            paused = debug.wait_paused()
            assert (paused["file"], paused["line"]) == ("app.py", RETURN_LINE)
            assert paused["generation"] == generation
            assert paused["breakpoint"] == bp["id"]  # the id stays stable across reloads
            variables = debug.command("locals")["locals"]
            assert variables["name"] == "'ada'"
            assert variables["message"] == f"'v{version} ada'"
            assert debug.command("eval", expression="len(message)")["result"] == str(
                len(f"v{version} ada")
            )
            debug.command("continue")
            thread.join(30)
            assert result["response"].status_code == 200
            assert result["response"].json()["message"] == f"v{version} ada"
    finally:
        session.close()
    state = debug.state()
    assert state["breakpoints"][0]["hits"] == 10
    sync = simulator.get("/metrics", headers=simulator.debug_headers()).text
    assert f'debug_breakpoint_replay_ms_count{{plugin="{PLUGIN}"}}' in sync


def test_a_breakpoint_follows_its_line_and_is_reported_unverified_when_the_line_goes(
    debugged: tuple[RunningSimulator, Path],
) -> None:
    simulator, plugin = debugged
    debug = Debug(simulator)
    response = debug.put(
        {"file": "app.py", "line": RETURN_LINE, "kind": "snapshot"},
        {"file": "app.py", "line": 10, "kind": "snapshot"},  # `password = ...`
    )
    assert response.status_code == 200, response.text
    edit(plugin, "async def home(request):\n", "async def home(request):\n    # one\n    # two\n")
    assert push(simulator, plugin).status_code == 200
    lines = {bp["id"]: bp for bp in debug.state()["breakpoints"]}
    assert [bp["line"] for bp in lines.values()] == [RETURN_LINE + 2, 12]
    assert all(bp["verified"] for bp in lines.values())
    # The snapshot at the moved line still fires, in the new generation.
    assert simulator.get(f"/plugins/{PLUGIN}/").status_code == 200
    snapshot = _wait_for_snapshot(debug)
    assert snapshot["line"] in {RETURN_LINE + 2, 12}
    # Delete the password line: that breakpoint is unverified, not lost; the other moves up.
    edit(plugin, '    password = "hunter2-not-for-logs"\n', "")
    edit(plugin, ', "secret_length": len(password)', "")
    assert push(simulator, plugin).status_code == 200
    after = {bp["id"]: bp for bp in debug.state()["breakpoints"]}
    assert set(after) == set(lines)
    gone = next(bp for bp in after.values() if not bp["verified"])
    assert "line removed" in gone["message"]
    kept = next(bp for bp in after.values() if bp["verified"])
    assert kept["line"] == RETURN_LINE + 1


def _wait_for_snapshot(debug: Debug, timeout_s: float = 10.0) -> dict[str, Any]:
    state = wait_until(debug.state, timeout_s, accept=lambda s: s["snapshots"], what="a snapshot")
    return dict(state["snapshots"][-1])


def test_snapshots_do_not_halt_and_mask_secrets(debugged: tuple[RunningSimulator, Path]) -> None:
    simulator, _ = debugged
    debug = Debug(simulator)
    assert debug.put({"file": "app.py", "line": RETURN_LINE, "kind": "snapshot"}).status_code == 200
    started = time.monotonic()
    response = simulator.get(f"/plugins/{PLUGIN}/?name=bob@example.com")
    assert response.status_code == 200 and time.monotonic() - started < 10
    snapshot = _wait_for_snapshot(debug)
    assert snapshot["line"] == RETURN_LINE
    assert (
        "hunter2" not in str(snapshot)
        and snapshot["locals"]["password"] != "'hunter2-not-for-logs'"
    )
    assert "bob@" not in str(snapshot)
    assert snapshot["locals"]["message"].startswith("'v0 ")


def test_a_pause_breakpoint_without_a_client_does_not_hang_the_plugin(
    debugged: tuple[RunningSimulator, Path],
) -> None:
    simulator, _ = debugged
    debug = Debug(simulator)
    assert debug.put({"file": "app.py", "line": RETURN_LINE}).status_code == 200
    assert simulator.get(f"/plugins/{PLUGIN}/").status_code == 200
    assert _wait_for_snapshot(debug)["line"] == RETURN_LINE
    assert debug.state()["paused"] is None


def test_reloading_while_paused_tells_the_client_and_keeps_the_breakpoints(
    debugged: tuple[RunningSimulator, Path],
) -> None:
    simulator, plugin = debugged
    debug = Debug(simulator)
    debug.call("POST", f"/internal/debug/sessions/{PLUGIN}/attach")
    assert debug.put({"file": "app.py", "line": RETURN_LINE}).status_code == 200
    thread, result = request_in_background(simulator, f"/plugins/{PLUGIN}/")
    first = debug.wait_paused()
    for frame in ("top", 99):  # bad input is a 4xx with a code, never a 500
        refused = debug.call(
            "POST",
            f"/internal/debug/sessions/{PLUGIN}/command",
            {"command": "locals", "frame": frame},
        )
        assert refused.status_code == 422 and refused.json()["error"] == "debug_frame_unknown"
    edit(plugin, 'GREETING = "v0"', 'GREETING = "v1"')
    assert push(simulator, plugin).status_code == 200
    thread.join(30)
    # The paused request finished in its own generation; the new one serves.
    assert result["response"].status_code == 200
    assert result["response"].json()["message"] == "v0 world"
    state = debug.state()
    assert state["generation"] > first["generation"]
    assert state["paused"] is None
    assert state["breakpoints"][0]["verified"] is True
    notice = debug.first_event("plugin.debug.notice")
    assert f"generation {first['generation']} was replaced" in notice["message"]
    assert "1 breakpoint(s) carried over" in notice["message"]
    thread, result = request_in_background(simulator, f"/plugins/{PLUGIN}/")
    again = debug.wait_paused()
    assert again["generation"] == state["generation"] and again["line"] == RETURN_LINE
    debug.command("continue")
    thread.join(30)
    assert result["response"].json()["message"] == "v1 world"


def test_bad_breakpoints_are_refused_with_every_problem_and_change_nothing(
    debugged: tuple[RunningSimulator, Path],
) -> None:
    simulator, _ = debugged
    debug = Debug(simulator)
    response = debug.put(
        {"file": "nope.py", "line": 1},
        {"file": "app.py", "line": 999},
        {"file": "app.py", "line": 9, "condition": "name ==="},
        {"file": "../outside.py", "line": 1},
        {"file": "app.py", "line": 0},
        {"file": "app.py", "line": 9, "hit_condition": "> some"},
    )
    assert response.status_code in {400, 422}
    body = response.json()
    assert body["error"] == "breakpoints_invalid" and body["fix"]
    # Shape problems come first (all at once); then the checks against the plugin's files.
    wheres = {p["where"] for p in body["problems"]}
    assert {"breakpoints[3].file", "breakpoints[4].line", "breakpoints[5].hit_condition"} <= wheres
    [hit_problem] = [p for p in body["problems"] if p["where"] == "breakpoints[5].hit_condition"]
    assert ">=3" in hit_problem["message"] and "%3" in hit_problem["message"]
    response = debug.put(
        {"file": "nope.py", "line": 1},
        {"file": "app.py", "line": 999},
        {"file": "app.py", "line": 9, "condition": "name ==="},
    )
    assert response.status_code == 422
    wheres = {p["where"] for p in response.json()["problems"]}
    assert wheres == {"breakpoints[0].file", "breakpoints[1].line", "breakpoints[2].condition"}
    assert debug.state()["breakpoints"] == []
    assert debug.state()["debugging"] is False  # nothing restarted either
    unauthenticated = simulator.request(
        "PUT", f"/internal/debug/breakpoints/{PLUGIN}", json={"breakpoints": []}
    )
    assert unauthenticated.status_code == 401
    assert debug.command_error("continue")["error"] == "debug_not_paused"
    # Deleting: an unknown plugin (any name, however odd) and a non-number id are refused.
    headers = simulator.debug_headers()
    odd = "T\u0335o\u035e i\u0332nvoke" * 20
    unknown = simulator.request("DELETE", f"/internal/debug/breakpoints/{odd}", headers=headers)
    assert unknown.status_code == 404 and unknown.json()["error"] == "plugin_not_found"
    for raw in ("two", "\u00b2", "\u0663"):  # "²" and "٣" are digits to str.isdigit
        bad = simulator.request(
            "DELETE", f"/internal/debug/breakpoints/{PLUGIN}", params={"id": raw}, headers=headers
        )
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_id", raw


def test_python_hit_counts_pause_only_on_the_matching_hits(
    debugged: tuple[RunningSimulator, Path],
) -> None:
    simulator, _ = debugged
    debug = Debug(simulator)
    assert debug.call("POST", f"/internal/debug/sessions/{PLUGIN}/attach").status_code == 200
    # Counted only when the condition holds: the second and later requests for x pause.
    placed = debug.put(
        {"file": "app.py", "line": RETURN_LINE, "condition": "name == 'x'", "hit_condition": ">=2"}
    )
    assert placed.status_code == 200, placed.text
    names = ["x", "y", "y", "x", "x"]
    paths = [f"/plugins/{PLUGIN}/?name={name}" for name in names]
    assert pauses(simulator, debug, paths) == [False, False, False, True, True]
    # A changed breakpoint counts afresh; %2 is every second hit.
    assert (
        debug.put({"file": "app.py", "line": RETURN_LINE, "hit_condition": "%2"}).status_code == 200
    )
    assert pauses(simulator, debug, paths[:4]) == [False, True, False, True]


def test_breakpoints_survive_a_restart_of_the_simulator(
    debugged: tuple[RunningSimulator, Path], workspace: Workspace, start_simulator: Any
) -> None:
    simulator, plugin = debugged
    debug = Debug(simulator)
    assert debug.put({"file": "app.py", "line": RETURN_LINE, "kind": "snapshot"}).status_code == 200
    simulator.stop()
    again = start_simulator([plugin])
    debug = Debug(again)
    state = debug.state()
    assert [(bp["file"], bp["line"]) for bp in state["breakpoints"]] == [("app.py", RETURN_LINE)]
    assert state["debugging"] is True  # the first generation started with the debugger
    assert again.get(f"/plugins/{PLUGIN}/").status_code == 200
    assert _wait_for_snapshot(debug)["line"] == RETURN_LINE


NODE_PLUGIN = "com.example.hello-node"
NODE_RETURN_LINE = 18  # `return json({` in examples/hello-node/src/index.ts


def test_node_breakpoint_in_typescript_hits_after_each_of_ten_reloads(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = copy_example(HELLO_NODE, tmp_path / "hello-node")
    source = plugin / "src" / "index.ts"
    assert source.read_text().splitlines()[NODE_RETURN_LINE - 1].strip() == "return json({"
    simulator = start_simulator([plugin])
    debug = Debug(simulator, NODE_PLUGIN)
    assert debug.call("POST", f"/internal/debug/sessions/{NODE_PLUGIN}/attach").status_code == 200
    response = debug.put({"file": "src/index.ts", "line": NODE_RETURN_LINE})
    assert response.status_code == 200, response.text
    [bp] = response.json()["breakpoints"]
    assert bp["verified"] is True
    session = BuildSession(plugin, workspace.state_dir / "test-build")
    line = NODE_RETURN_LINE
    try:
        for version in range(1, 11):
            set_node_greeting(plugin, f"v{version}")
            if version == 5:  # code moves down: the breakpoint follows its line
                text = source.read_text()
                source.write_text(text.replace("function json(", "// moved\nfunction json(", 1))
                line += 1
            reloaded = push(simulator, plugin, session)
            assert reloaded.status_code == 200, reloaded.text
            thread, result = request_in_background(simulator, f"/plugins/{NODE_PLUGIN}/")
            paused = debug.wait_paused()
            assert (paused["file"], paused["line"]) == ("src/index.ts", line)
            assert paused["generation"] == reloaded.json()["generation"]
            assert paused["breakpoint"] == bp["id"]
            assert debug.command("locals")["locals"]["contacts"].startswith("Array(7)")
            assert debug.command("eval", expression="GREETING")["result"] == f'"v{version}"'
            assert debug.command("eval", expression="contacts.length")["result"] == "7"
            debug.command("continue")
            thread.join(30)
            assert result["response"].json()["greeting"] == f"v{version}"
    finally:
        session.close()
    assert debug.state()["breakpoints"][0]["line"] == line
    # A log point: V8 has none, so it is a condition that logs and is false.
    placed = debug.put(
        {"file": "src/index.ts", "line": line, "log_message": "{contacts.length} contacts"}
    )
    assert placed.status_code == 200, placed.text
    assert simulator.get(f"/plugins/{NODE_PLUGIN}/").status_code == 200
    assert debug.state()["paused"] is None
    logs = wait_until(
        lambda: (
            simulator.get(
                f"/internal/debug/logs?plugin={NODE_PLUGIN}&follow=0&tail=200",
                headers=debug.headers,
            ).text
        ),
        accept=lambda text: "7 contacts" in text,
        what="the log point's line",
    )
    assert "Debugger listening" not in logs  # the inspector's own chatter is kept out


def test_node_hit_counts_pause_only_on_the_matching_hits_in_each_generation(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = copy_example(HELLO_NODE, tmp_path / "hello-node")
    simulator = start_simulator([plugin])
    debug = Debug(simulator, NODE_PLUGIN)
    assert debug.call("POST", f"/internal/debug/sessions/{NODE_PLUGIN}/attach").status_code == 200
    placed = debug.put(
        {
            "file": "src/index.ts",
            "line": NODE_RETURN_LINE,
            "condition": "url.searchParams.get('name') === 'x'",
            "hit_condition": ">=2",
        }
    )
    assert placed.status_code == 200, placed.text
    assert placed.json()["breakpoints"][0]["verified"] is True
    names = ["x", "y", "y", "x", "x"]
    paths = [f"/plugins/{NODE_PLUGIN}/?name={name}" for name in names]
    assert pauses(simulator, debug, paths) == [False, False, False, True, True]
    placed = debug.put({"file": "src/index.ts", "line": NODE_RETURN_LINE, "hit_condition": "3"})
    assert placed.status_code == 200, placed.text
    assert pauses(simulator, debug, paths[:4]) == [False, False, True, False]
    # A new generation counts from one again, like a new debugpy process.
    set_node_greeting(plugin, "counted again")
    session = BuildSession(plugin, workspace.state_dir / "test-build")
    try:
        assert push(simulator, plugin, session).status_code == 200
    finally:
        session.close()
    assert pauses(simulator, debug, paths[:4]) == [False, False, True, False]


def test_a_log_point_writes_to_the_plugin_log_without_halting(
    debugged: tuple[RunningSimulator, Path],
) -> None:
    simulator, _ = debugged
    debug = Debug(simulator)
    debug.call("POST", f"/internal/debug/sessions/{PLUGIN}/attach")  # even with a client
    placed = debug.put({"file": "app.py", "line": RETURN_LINE, "log_message": "said {message}"})
    assert placed.status_code == 200, placed.text
    response = simulator.get(f"/plugins/{PLUGIN}/?name=logpoint")
    assert response.status_code == 200 and debug.state()["paused"] is None

    def logs() -> str:
        path = f"/internal/debug/logs?plugin={PLUGIN}&follow=0&tail=50"
        return simulator.get(path, headers=debug.headers).text

    wait_until(logs, 10, accept=lambda text: "said v0 logpoint" in text, what="the log line")


def test_the_stack_shows_no_simulator_frames_and_out_finishes_the_request(
    debugged: tuple[RunningSimulator, Path],
) -> None:
    simulator, _ = debugged
    debug = Debug(simulator)
    assert debug.call("POST", f"/internal/debug/sessions/{PLUGIN}/attach").status_code == 200
    assert debug.put({"file": "app.py", "line": RETURN_LINE}).status_code == 200
    thread, result = request_in_background(simulator, f"/plugins/{PLUGIN}/?name=out")
    debug.wait_paused()
    stack = debug.command("stack")["stack"]
    assert (stack[0]["file"], stack[0]["name"]) == ("app.py", "home")
    shown = " ".join(str(frame["file"]) for frame in stack)
    assert "python_shim" not in shown and "powerx_plugin" not in shown and "/powerx/" not in shown
    debug.command("out")  # from the outermost plugin frame: nothing of the plugin's is left
    thread.join(15)
    assert result["response"].json()["message"] == "v0 out"
    assert debug.state()["paused"] is None


def test_node_stack_shows_no_shim_frames_and_out_finishes_the_request(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = copy_example(HELLO_NODE, tmp_path / "hello-node")
    simulator = start_simulator([plugin])
    debug = Debug(simulator, NODE_PLUGIN)
    assert debug.call("POST", f"/internal/debug/sessions/{NODE_PLUGIN}/attach").status_code == 200
    assert debug.put({"file": "src/index.ts", "line": NODE_RETURN_LINE}).status_code == 200
    thread, result = request_in_background(simulator, f"/plugins/{NODE_PLUGIN}/")
    debug.wait_paused()
    stack = debug.command("stack")["stack"]
    assert (stack[0]["file"], stack[0]["name"]) == ("src/index.ts", "fetch")
    assert "node_shim" not in " ".join(str(frame["file"]) for frame in stack)
    debug.command("out")
    thread.join(15)
    assert "response" in result, json.dumps(debug.state()["paused"])
    assert result["response"].json()["greeting"] == "hello from node"
    assert debug.state()["paused"] is None


def test_fix_hints_name_what_is_wrong(debugged: tuple[RunningSimulator, Path]) -> None:
    simulator, _ = debugged
    debug = Debug(simulator)
    refused = debug.put({"file": "app.py", "line": 9, "condition": "name ==="})
    assert refused.status_code == 422
    assert "Python expression" in refused.json()["fix"]
    assert "relative to the plugin folder" not in refused.json()["fix"]
    assert debug.call("POST", f"/internal/debug/sessions/{PLUGIN}/attach").status_code == 200
    assert debug.put({"file": "app.py", "line": RETURN_LINE}).status_code == 200
    thread, result = request_in_background(simulator, f"/plugins/{PLUGIN}/")
    debug.wait_paused()
    failed = debug.call(
        "POST",
        f"/internal/debug/sessions/{PLUGIN}/command",
        {"command": "eval", "expression": "nosuchname + 1"},
    )
    assert failed.status_code == 422, failed.text
    body = failed.json()
    assert body["error"] == "debug_eval_failed" and "NameError" in body["message"]
    assert "locals" in body["fix"] and "replaced" not in body["fix"]
    debug.command("continue")
    thread.join(30)
    assert result["response"].status_code == 200


def test_node_log_points_count_hits_and_a_comment_line_is_not_verified(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = copy_example(HELLO_NODE, tmp_path / "hello-node")
    assert (plugin / "src/index.ts").read_text().startswith("// ")
    simulator = start_simulator([plugin])
    debug = Debug(simulator, NODE_PLUGIN)
    assert debug.call("POST", f"/internal/debug/sessions/{NODE_PLUGIN}/attach").status_code == 200
    placed = debug.put(
        {"file": "src/index.ts", "line": 1},
        {"file": "src/index.ts", "line": NODE_RETURN_LINE, "log_message": "{contacts.length} of"},
    )
    assert placed.status_code == 200, placed.text
    comment, log_point = placed.json()["breakpoints"]
    assert comment["verified"] is False and "comment" in comment["message"]
    assert log_point["verified"] is True
    for _ in range(3):
        assert simulator.get(f"/plugins/{NODE_PLUGIN}/").status_code == 200
    assert debug.state()["paused"] is None
    assert wait_until(lambda: debug.state()["breakpoints"][1]["hits"] == 3, 10)

    def logs() -> str:
        path = f"/internal/debug/logs?plugin={NODE_PLUGIN}&follow=0&tail=50"
        return simulator.get(path, headers=debug.headers).text

    wait_until(logs, 10, accept=lambda text: text.count("7 of") == 3, what="3 log lines")


def test_a_breakpoint_follows_its_function_not_a_renamed_copy_above_it(
    debugged: tuple[RunningSimulator, Path],
) -> None:
    simulator, plugin = debugged
    debug = Debug(simulator)
    placed = debug.put({"file": "app.py", "line": RETURN_LINE, "kind": "snapshot"})
    assert placed.status_code == 200, placed.text
    handler = APP[APP.index("async def home") : APP.index("\n\napp = ")]
    copy = handler.replace("async def home(", "async def home_unused(") + "\n\n\n"
    # The copy above, and the real one edited a little: a diff matches the old function
    # to the copy (its longest unchanged block), which is never called.
    edit(plugin, "    return JSONResponse", "    name = name.strip()\n    return JSONResponse")
    edit(plugin, "async def home(", copy + "async def home(")
    assert push(simulator, plugin).status_code == 200
    [bp] = debug.state()["breakpoints"]
    moved = RETURN_LINE + copy.count("\n") + 1
    assert (bp["line"], bp["verified"]) == (moved, True)
    lines = (plugin / "app.py").read_text().splitlines()
    assert lines[moved - 1].strip().startswith("return JSONResponse")
    assert simulator.get(f"/plugins/{PLUGIN}/?name=real").status_code == 200
    assert _wait_for_snapshot(debug)["line"] == moved  # it fires: `home` is what is called


def test_exception_breakpoints_from_the_console_api_pause_where_the_plugin_raises(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    app = APP.replace(
        '    password = "hunter2-not-for-logs"\n',
        '    password = "hunter2-not-for-logs"\n    try:\n        int(name)\n'
        "    except ValueError:\n        pass\n",
    )
    plugin = write_plugin(tmp_path / "debugged", python_manifest(PLUGIN), {"app.py": app})
    simulator = start_simulator([plugin])
    debug = Debug(simulator)
    assert debug.call("POST", f"/internal/debug/sessions/{PLUGIN}/attach").status_code == 200
    assert debug.command("catch", mode="raised") == {"catch": "raised"}
    thread, result = request_in_background(simulator, f"/plugins/{PLUGIN}/?name=ada")
    paused = debug.wait_paused()
    assert (paused["reason"], paused["file"], paused["line"]) == ("exception", "app.py", 12)
    debug.command("continue")
    thread.join(30)
    assert result["response"].status_code == 200
    assert debug.command("catch", mode="off") == {"catch": "off"}
    assert simulator.get(f"/plugins/{PLUGIN}/?name=bo").status_code == 200
    assert debug.state()["paused"] is None
    bad = debug.call(
        "POST", f"/internal/debug/sessions/{PLUGIN}/command", {"command": "catch", "mode": "x"}
    )
    assert bad.status_code == 422 and bad.json()["error"] == "debug_catch_invalid"


def test_node_values_open_their_first_level_and_exceptions_can_pause(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = copy_example(HELLO_NODE, tmp_path / "hello-node")
    source = plugin / "src/index.ts"
    parse = (
        '    if (url.pathname === "/parse") {\n'
        '      try { JSON.parse("not json"); } catch { return json({ parsed: false }); }\n'
        "    }\n"
    )
    marker = '    if (url.pathname === "/messages") {\n'
    source.write_text(source.read_text().replace(marker, parse + marker))
    simulator = start_simulator([plugin])
    debug = Debug(simulator, NODE_PLUGIN)
    assert debug.call("POST", f"/internal/debug/sessions/{NODE_PLUGIN}/attach").status_code == 200
    assert debug.put({"file": "src/index.ts", "line": NODE_RETURN_LINE}).status_code == 200
    thread, result = request_in_background(simulator, f"/plugins/{NODE_PLUGIN}/")
    debug.wait_paused()
    assert debug.command("eval", expression="{a: 1, b: 'x'}")["result"] == '{a: 1, b: "x"}'
    first = debug.command("eval", expression="contacts[0]")["result"]
    assert first.startswith("{") and 'name: "Margaret Allen"' in first
    assert debug.command("locals")["locals"]["contacts"].startswith("Array(7) [{…}, {…}")
    assert debug.command("set", name="GREETING", value="'set here'") == {
        "name": "GREETING",
        "result": '"set here"',
    }
    debug.command("continue")
    thread.join(30)
    assert result["response"].json()["greeting"] == "set here"
    # The plugin catches it itself: `catch raised` stops at the throw anyway.
    assert debug.command("catch", mode="raised") == {"catch": "raised"}
    thread, result = request_in_background(simulator, f"/plugins/{NODE_PLUGIN}/parse")
    paused = debug.wait_paused()
    assert (paused["reason"], paused["file"]) == ("exception", "src/index.ts")
    assert "JSON.parse" in source.read_text().splitlines()[paused["line"] - 1]
    debug.command("catch", mode="off")
    debug.command("continue")
    thread.join(30)
    assert result["response"].json() == {"parsed": False}
