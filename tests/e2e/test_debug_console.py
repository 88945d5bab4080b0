"""`powerx debug attach` driven through a pseudo-terminal, as a developer types into it."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pexpect
import pytest

from powerx.testing import wait_until
from tests.conftest import RunningSimulator, Workspace, python_manifest, write_plugin
from tests.integration.test_debugging import (
    APP,
    PLUGIN,
    RETURN_LINE,
    Debug,
    edit,
    request_in_background,
)
from tests.integration.test_hot_reload import push

PROMPT = r"\(powerx\) "


def console(workspace: Workspace, *args: str) -> pexpect.spawn:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "powerx.cli.main", "debug", "attach", PLUGIN, *args],
        cwd=str(workspace.root),
        env={**workspace.env, "TERM": "dumb"},  # plain text: no styles to match around
        encoding="utf-8",
        timeout=30,
        dimensions=(50, 200),
    )
    return child


@pytest.fixture
def simulator(workspace: Workspace, tmp_path: Path, start_simulator: Any) -> RunningSimulator:
    workspace.login()
    plugin = write_plugin(tmp_path / "debugged", python_manifest(PLUGIN), {"app.py": APP})
    started: RunningSimulator = start_simulator([plugin])
    started.plugin_dir = plugin  # type: ignore[attr-defined]
    return started


def test_break_inspect_and_continue_across_a_reload(
    simulator: RunningSimulator, workspace: Workspace
) -> None:
    child = console(workspace)
    try:
        child.expect("attached to com.test.debugged")
        child.expect(PROMPT)
        child.sendline(f"break app.py:{RETURN_LINE}")
        child.expect(rf"breakpoint 1 \(pause\) at app.py:{RETURN_LINE}")
        child.expect(PROMPT)

        thread, result = request_in_background(simulator, f"/plugins/{PLUGIN}/?name=ada")
        child.expect(rf"paused at app.py:{RETURN_LINE} \(breakpoint 1\)")
        child.expect(r"->\s+12\s+return JSONResponse")
        child.sendline("locals")
        child.expect(r"message = 'v0 ada'")
        child.sendline("p len(name) * 10")
        child.expect(r"\r\n30\r\n")
        child.sendline("stack")
        child.expect(rf"#0\s+app.py:{RETURN_LINE} home")
        child.sendline("c")
        thread.join(30)
        assert result["response"].json()["message"] == "v0 ada"

        # Reload while paused: the console says so and the breakpoint carries over.
        thread, result = request_in_background(simulator, f"/plugins/{PLUGIN}/")
        child.expect(r"paused at app.py:12")
        plugin = simulator.plugin_dir  # type: ignore[attr-defined]
        edit(plugin, 'GREETING = "v0"', 'GREETING = "v1"')
        assert push(simulator, plugin).status_code == 200
        child.expect(r"the plugin reloaded while paused")
        thread.join(30)
        assert result["response"].status_code == 200
        thread, result = request_in_background(simulator, f"/plugins/{PLUGIN}/?name=bo")
        child.expect(r"paused at app.py:12 \(breakpoint 1\) in generation")
        child.sendline("locals")
        child.expect(r"message = 'v1 bo'")
        child.sendline("continue")
        thread.join(30)
        assert result["response"].json()["message"] == "v1 bo"

        child.sendline("list")
        child.expect(rf"✓\s+1 pause\s+app.py:{RETURN_LINE}\s+hits 3")
        child.sendline("break app.py:10 hits >=2 if name == 'x'")
        child.expect(r"breakpoint 2 \(pause\) at app.py:10")
        child.sendline("list")
        child.expect(r"app.py:10 on hit >=2 if name == 'x'")
        child.sendline("break app.py:10 hits often")
        child.expect(r"breakpoints\[0\].hit_condition: 'often' is not a hit count")
        child.sendline("break nowhere.py:3")
        child.expect(r"breakpoints_invalid")
        child.expect(r"no file 'nowhere.py' in the plugin")
        child.sendline("continue")
        child.expect(r"debug_not_paused")
        child.sendline("quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before
    # Detached: a request no longer pauses (the breakpoint acts as a snapshot).
    response = httpx.get(simulator.url + f"/plugins/{PLUGIN}/", timeout=10, trust_env=False)
    assert response.status_code == 200


def test_snapshot_and_logs_from_the_console(
    simulator: RunningSimulator, workspace: Workspace
) -> None:
    child = console(workspace, "-c", f"snap app.py:{RETURN_LINE}", "-c", "logs on")
    try:
        child.expect(r"breakpoint 1 \(snapshot\)")
        child.expect(r"live logs on")
        response = httpx.get(
            simulator.url + f"/plugins/{PLUGIN}/?name=eve", timeout=10, trust_env=False
        )
        assert response.status_code == 200  # a snapshot never halts
        child.expect(rf"snapshot at app.py:{RETURN_LINE}")
        child.expect(r"message = 'v0 eve'")
        child.expect(r"│ #\d+ info\s+GET / 200")
        child.sendline(f"log app.py:{RETURN_LINE - 1} greeted {{name}}")
        child.expect(r"log point 2 at app.py:11: greeted \{name\}")
        httpx.get(simulator.url + f"/plugins/{PLUGIN}/?name=zoe", timeout=10, trust_env=False)
        child.expect(r"│ #\d+ info\s+greeted zoe")
        child.sendline("clear")
        child.expect(r"removed 2 breakpoint")
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_vscode_prints_an_attach_configuration_for_the_stable_port(
    simulator: RunningSimulator, workspace: Workspace
) -> None:
    result = workspace.powerx("debug", "vscode", PLUGIN)
    assert result.returncode == 0, result.stderr
    configuration = json.loads(result.stdout)["configurations"][0]
    [status] = simulator.status()["plugins"]
    assert configuration["request"] == "attach" and configuration["type"] == "debugpy"
    assert configuration["connect"] == {"host": "127.0.0.1", "port": status["debug_port"]}
    # The port's secret, which VS Code passes to the proxy in the attach request.
    assert configuration["powerxToken"] == simulator.ide_access(PLUGIN)["secret"]
    missing = workspace.powerx("debug", "vscode", "com.nope.plugin")
    assert missing.returncode == 1 and "plugin_not_found" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_the_console_debugs_a_node_plugin_the_same_way(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    from tests.integration.test_debugging import NODE_PLUGIN, NODE_RETURN_LINE
    from tests.integration.test_hot_reload import HELLO_NODE, copy_example

    workspace.login()
    plugin = copy_example(HELLO_NODE, tmp_path / "hello-node")
    simulator = start_simulator([plugin])
    child = pexpect.spawn(
        sys.executable,
        ["-m", "powerx.cli.main", "debug", "attach", NODE_PLUGIN],
        cwd=str(workspace.root),
        env={**workspace.env, "TERM": "dumb"},
        encoding="utf-8",
        timeout=30,
        dimensions=(50, 200),
    )
    try:
        child.expect(PROMPT)
        child.sendline(f"break src/index.ts:{NODE_RETURN_LINE}")
        child.expect(rf"breakpoint 1 \(pause\) at src/index.ts:{NODE_RETURN_LINE}")
        thread, result = request_in_background(simulator, f"/plugins/{NODE_PLUGIN}/")
        child.expect(rf"paused at src/index.ts:{NODE_RETURN_LINE} \(breakpoint 1\)")
        child.expect(r"->\s+18\s+return json\(\{")
        child.sendline("p contacts[0].name")
        child.expect(r'"Margaret Allen"')
        child.sendline("stack")
        child.expect(rf"#0\s+src/index.ts:{NODE_RETURN_LINE} fetch")
        child.sendline("continue")
        thread.join(30)
        assert result["response"].json()["first_contact"] == "Margaret Allen"
        child.sendline("quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


@pytest.mark.parametrize("signal_number", [signal.SIGHUP, signal.SIGKILL])
def test_a_killed_console_detaches_at_once_and_requests_go_on(
    simulator: RunningSimulator, workspace: Workspace, signal_number: int
) -> None:
    """A closed terminal tab (SIGHUP) or SIGKILL: no `quit`, no detach request; the
    simulator sees the console's connection close."""
    debug = Debug(simulator)
    child = console(workspace, "-c", f"break app.py:{RETURN_LINE}")
    try:
        child.expect(rf"breakpoint 1 \(pause\) at app.py:{RETURN_LINE}")
        child.expect(PROMPT)
        thread, result = request_in_background(simulator, f"/plugins/{PLUGIN}/?name=held")
        child.expect(rf"paused at app.py:{RETURN_LINE}")
        assert debug.state()["clients"] == 1
        child.kill(signal_number)
        wait_until(
            debug.state, 10, accept=lambda s: s["clients"] == 0, what="the console to detach"
        )
        thread.join(10)  # the paused request went on: nobody could have resumed it
        assert result["response"].json()["message"] == "v0 held"
        started = time.monotonic()
        response = httpx.get(simulator.url + f"/plugins/{PLUGIN}/", timeout=10, trust_env=False)
        assert response.status_code == 200
        assert time.monotonic() - started < 1.0  # not paused: a snapshot, nobody is there
    finally:
        child.close(force=True)
    assert debug.state()["paused"] is None


def test_log_points_are_listed_with_their_hits_and_never_silently_replace_a_breakpoint(
    simulator: RunningSimulator, workspace: Workspace
) -> None:
    debug = Debug(simulator)
    child = console(workspace, "-c", f"break app.py:{RETURN_LINE}")
    try:
        child.expect(rf"breakpoint 1 \(pause\) at app.py:{RETURN_LINE}")
        child.expect(PROMPT)
        child.sendline(f"log app.py:{RETURN_LINE} said {{message}}")
        child.expect(r"breakpoint_place_taken")
        child.expect(r"fix: clear it first \(`clear 1`\)")
        assert [bp.get("log_message") for bp in debug.state()["breakpoints"]] == [None]
        child.sendline("clear 1")
        child.expect(r"removed 1 breakpoint")
        child.sendline(f"log app.py:{RETURN_LINE} said {{message}}")
        child.expect(rf"log point 2 at app.py:{RETURN_LINE}")
        for name in ("ann", "ben"):
            response = httpx.get(
                simulator.url + f"/plugins/{PLUGIN}/?name={name}", timeout=10, trust_env=False
            )
            assert response.status_code == 200  # a log point never halts
        assert wait_until(lambda: debug.state()["breakpoints"][0]["hits"] == 2, 10)
        child.sendline("list")
        child.expect(rf"✓\s+2 log\s+app.py:{RETURN_LINE} log 'said \{{message\}}'\s+hits 2")
        child.sendline("quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    listed = workspace.powerx("debug", "breakpoints", PLUGIN)
    assert f"2 log      app.py:{RETURN_LINE}" in listed.stdout, listed.stdout


def test_the_prompt_comes_back_after_a_notice(
    simulator: RunningSimulator, workspace: Workspace
) -> None:
    child = console(workspace)
    try:
        child.expect(PROMPT)
        child.sendline(f"break app.py:{RETURN_LINE}")
        child.expect(r"breakpoint 1 \(pause\)")
        child.expect(PROMPT)
        thread, result = request_in_background(simulator, f"/plugins/{PLUGIN}/")
        child.expect(rf"->\s+{RETURN_LINE}\s+return JSONResponse")
        child.expect(PROMPT, timeout=10)  # printed again after the paused notice
        child.sendline("p nosuchname")
        child.expect(r"debug_eval_failed")
        child.expect(r"NameError")
        child.expect(r"fix: use names of the paused frame")
        child.sendline("c")
        thread.join(30)
        assert result["response"].status_code == 200
        child.sendline("quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


NESTED_APP = """\
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


def greet(name):
    message = f"hello {name}"
    return message


async def home(request):
    name = request.query_params.get("name", "world")
    return JSONResponse({"message": greet(name)})


app = Starlette(routes=[Route("/", home)])
"""


def test_frames_watches_and_set_from_the_console(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = write_plugin(tmp_path / "nested", python_manifest(PLUGIN), {"app.py": NESTED_APP})
    simulator = start_simulator([plugin])
    child = console(workspace, "-c", "watch name", "-c", "break app.py:8")
    try:
        child.expect(r"watch 1: name")
        child.expect(r"breakpoint 1 \(pause\)")
        child.expect(PROMPT)
        thread, result = request_in_background(simulator, f"/plugins/{PLUGIN}/?name=ada")
        child.expect(r"paused at app.py:8")
        child.expect(r"watch name = 'ada'")  # shown at the stop, unasked
        child.sendline("up")
        child.expect(r"#1  app.py:13 home")
        child.sendline("p request.query_params['name']")  # only the caller has `request`
        child.expect(r"'ada'")
        child.sendline("locals")
        child.expect(r"request = ")
        child.sendline("down")
        child.expect(r"#0  app.py:8 greet")
        child.sendline("set message 'changed ' + name")
        child.expect(r"message = 'changed ada'")
        child.sendline("frame x")
        child.expect(r"debug_frame_unknown")
        child.sendline("c")
        thread.join(30)
        assert result["response"].json()["message"] == "changed ada"
        child.sendline("quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
