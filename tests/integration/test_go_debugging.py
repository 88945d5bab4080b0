"""Go plugins under Delve: VS Code's DAP client (tests/dap-client/drive.js) attaches once
to the plugin's stable debug port and stops at its breakpoint in every one of ten reloads;
the breakpoint follows its line through an edit; a watched plugin is rebuilt for the
debugger (-gcflags=all=-N -l) once one is attached."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from powerx.bundling import BuildSession
from powerx.bundling.go import DEBUG_GCFLAGS
from powerx.testing import wait_until
from tests.conftest import RunningSimulator, Workspace
from tests.integration.test_dap_debugclient import debug_client  # noqa: F401 - the fixture
from tests.integration.test_debugging import Debug, request_in_background
from tests.integration.test_go_plugins import GO_ID, HELLO, MAIN_GO, set_greeting, start_go
from tests.integration.test_hot_reload import push

# The line after the tenant is read in hello(): `tenant` is a local there.
TENANT_LINE = "\ttenant, _ := auth.FromRequest(r)"


@pytest.fixture(scope="session")
def debug_go_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One Go build cache for the debug builds of this test run: the first build with
    -N -l recompiles the standard library unoptimised (~25 s on two cores), once."""
    return tmp_path_factory.mktemp("go-debug-cache")


@pytest.fixture
def debug_session(
    workspace: Workspace, tmp_path: Path, debug_go_cache: Path
) -> Iterator[tuple[Path, BuildSession]]:
    from tests.integration.test_go_plugins import HELLO_GO
    from tests.integration.test_hot_reload import copy_example

    plugin = copy_example(HELLO_GO, tmp_path / "hello-go")
    session = BuildSession(plugin, workspace.state_dir / "test-build")
    session.go_cache, session.debug = debug_go_cache, True
    yield plugin, session
    session.close()


def line_after_tenant(plugin: Path) -> int:
    return (plugin / MAIN_GO).read_text().splitlines().index(TENANT_LINE) + 2


@pytest.mark.parametrize("sandbox", ["auto", "off"])
def test_vscode_debugclient_stops_in_go_after_each_of_ten_reloads(
    workspace: Workspace,
    start_simulator: Any,
    debug_session: tuple[Path, BuildSession],
    debug_client: Path,  # noqa: F811
    sandbox: str,
) -> None:
    workspace.env["POWERX_SANDBOX"] = sandbox
    workspace.login()
    plugin, session = debug_session
    simulator: RunningSimulator = start_simulator([plugin])
    line = line_after_tenant(plugin)
    local_file = str(plugin / MAIN_GO)
    access = simulator.ide_access(GO_ID)
    client = subprocess.Popen(
        ["node", str(debug_client), str(access["port"]), local_file, str(line), access["secret"]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert client.stdin is not None and client.stdout is not None

    def answer() -> dict[str, Any]:
        text = client.stdout.readline()  # type: ignore[union-attr]
        assert text, client.stderr.read() if client.stderr else ""
        return dict(json.loads(text))

    try:
        ready = answer()
        assert ready["breakpoint"]["verified"] is True
        for version in range(1, 11):
            set_greeting(plugin, f"v{version}")
            reloaded = push(simulator, plugin, session)
            assert reloaded.status_code == 200, reloaded.text
            # Replayed into the new generation before it took traffic.
            assert reloaded.json()["debug"]["verified"] == 1
            thread, result = request_in_background(simulator, HELLO)
            client.stdin.write("go\n")
            client.stdin.flush()
            stop = answer()
            assert (stop["path"], stop["line"]) == (local_file, line)
            assert "TenantID: 1" in stop["locals"]["tenant"]
            assert not {"terminated", "exited"} & set(stop["seen"])
            thread.join(30)
            assert result["response"].json()["greeting"] == f"v{version}"
        client.stdin.write("done\n")
        client.stdin.close()
        assert client.wait(timeout=30) == 0, client.stderr.read() if client.stderr else ""
    finally:
        if client.poll() is None:
            client.kill()


def test_a_go_breakpoint_follows_its_line_and_keeps_its_condition_through_an_edit(
    workspace: Workspace, start_simulator: Any, debug_session: tuple[Path, BuildSession]
) -> None:
    workspace.login()
    plugin, session = debug_session
    simulator: RunningSimulator = start_simulator([plugin])
    debug = Debug(simulator, GO_ID)
    attached = debug.call("POST", f"/internal/debug/sessions/{GO_ID}/attach")
    assert attached.status_code == 200, attached.text
    line = line_after_tenant(plugin)
    placed = debug.put(
        {"file": MAIN_GO.as_posix(), "line": line, "condition": "tenant.TenantID == 1"}
    )
    assert placed.status_code == 200, placed.text
    source = plugin / MAIN_GO
    source.write_text(source.read_text().replace(TENANT_LINE, "\t// a comment\n" + TENANT_LINE))
    assert push(simulator, plugin, session).status_code == 200
    [moved] = debug.state()["breakpoints"]
    assert moved["line"] == line + 1 and moved["verified"] is True
    thread, result = request_in_background(simulator, HELLO)
    paused = wait_until(lambda: debug.state()["paused"], 20)
    assert paused and (paused["file"], paused["line"]) == (MAIN_GO.as_posix(), line + 1)
    debug.command("continue")
    thread.join(30)
    assert result["response"].status_code == 200


def test_debug_vscode_prints_a_go_remote_attach_configuration(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    simulator, _ = start_go(workspace, start_simulator, tmp_path)
    result = workspace.powerx("debug", "vscode", GO_ID)
    assert result.returncode == 0, result.stderr
    [entry] = json.loads(result.stdout)["configurations"]
    access = simulator.ide_access(GO_ID)
    assert entry == {
        "name": f"PowerX: {GO_ID}",
        "type": "go",
        "request": "attach",
        "mode": "remote",
        "host": "127.0.0.1",
        "port": access["port"],
        "powerxToken": access["secret"],
    }


def test_a_watched_go_plugin_is_rebuilt_for_the_debugger_once_one_is_attached(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, debug_go_cache: Path
) -> None:
    # The dev loop's cache is the state folder's; this one already holds the -N -l build.
    (workspace.state_dir / "build").mkdir(parents=True)
    (workspace.state_dir / "build" / "go-cache").symlink_to(debug_go_cache)
    simulator, plugin = start_go(workspace, start_simulator, tmp_path, "--watch")
    binary = plugin / "backend" / "bin" / "plugin"

    def build_flags() -> str:
        return subprocess.run(
            ["go", "version", "-m", str(binary)], capture_output=True, text=True, check=True
        ).stdout

    assert "-N -l" not in build_flags()
    debug = Debug(simulator, GO_ID)
    attached = debug.call("POST", f"/internal/debug/sessions/{GO_ID}/attach")
    assert attached.status_code == 200, attached.text
    set_greeting(plugin, "first save")  # served by a debugged generation: the next builds
    simulator.wait_generation(GO_ID, 3)  # (2: the restart with the debugger)
    set_greeting(plugin, "second save")
    simulator.wait_generation(GO_ID, 4, timeout_s=120)
    assert DEBUG_GCFLAGS.removeprefix("-gcflags=") in build_flags()
    assert simulator.get(HELLO).json()["greeting"] == "second save"


def loopback_listeners(pid: int) -> list[int]:
    """The TCP ports process ``pid`` listens on at 127.0.0.1 (from /proc: its socket
    inodes, matched in /proc/net/tcp in LISTEN state)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = []
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == "0A" and inode in inodes and local.startswith("0100007F:"):
            ports.append(int(local.split(":")[1], 16))
    return ports


def speaks_dap(port: int) -> bool:
    """Whether what listens on ``port`` answers a DAP ``initialize`` with success, asking
    no secret: an attacker's first step towards running code in the plugin."""
    request = json.dumps({"seq": 1, "type": "request", "command": "initialize", "arguments": {}})
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
            sock.sendall(f"Content-Length: {len(request)}\r\n\r\n{request}".encode())
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = sock.recv(4096)
                if not chunk:
                    return False
                received += chunk
            head, _, body = received.partition(b"\r\n\r\n")
            length = int(head.split(b":")[1])
            while len(body) < length:
                chunk = sock.recv(4096)
                if not chunk:
                    return False
                body += chunk
    except (OSError, ValueError, IndexError):
        return False
    answer = json.loads(body[:length])
    return bool(answer.get("command") == "initialize" and answer.get("success"))


def test_a_sandboxed_go_generations_delve_is_not_on_any_loopback_port(
    workspace: Workspace, start_simulator: Any, debug_session: tuple[Path, BuildSession]
) -> None:
    """Delve has no access token: in a sandbox the simulator reaches it over a unix socket
    in the sandbox's private folder, so no port of this machine gives it away."""
    workspace.env["POWERX_SANDBOX"] = "auto"
    workspace.login()
    plugin, session = debug_session
    simulator: RunningSimulator = start_simulator([plugin])
    debug = Debug(simulator, GO_ID)
    attached = debug.call("POST", f"/internal/debug/sessions/{GO_ID}/attach")
    assert attached.status_code == 200, attached.text
    placed = debug.put({"file": MAIN_GO.as_posix(), "line": line_after_tenant(plugin)})
    assert placed.status_code == 200, placed.text
    reloaded = push(simulator, plugin, session)  # now under Delve, its breakpoint replayed
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json()["debug"]["verified"] == 1
    assert simulator.plugin_status(GO_ID)["contained"] is True
    assert simulator.process is not None
    ports = loopback_listeners(simulator.process.pid)
    # The IDE port answers initialize too, but it wants the secret before anything else.
    ide_port = simulator.ide_access(GO_ID)["port"]
    assert ide_port in ports
    assert [port for port in ports if port != ide_port and speaks_dap(port)] == [], ports
