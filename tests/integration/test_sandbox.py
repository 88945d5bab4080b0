"""Each plugin runs in its own OS sandbox (bubblewrap): its own network, mount and PID
namespaces; it still serves, calls the host API and reaches what its manifest names.
The attacks that try to get out are in tests/security/."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from powerx.host import bwrap, containment
from powerx.paths import run_root
from tests.conftest import HELLO_NODE, HELLO_PYTHON, Workspace, python_manifest, write_plugin

PY_ID = "com.example.hello-python"
NODE_ID = "com.example.hello-node"
NAMESPACES = ("net", "pid", "mnt")


def namespaces(pid: int | str) -> dict[str, str]:
    return {name: os.readlink(f"/proc/{pid}/ns/{name}") for name in NAMESPACES}


def pids(simulator: Any) -> dict[str, int]:
    return {p["id"]: int(p["pid"]) for p in simulator.status()["plugins"]}


def test_this_machine_can_contain_plugins() -> None:
    """The rest of this file and tests/security rely on it: `make setup` installs
    bubblewrap; if this fails, see the reason."""
    found = containment.containment("auto")
    assert found.contained, f"{found.reason} (fix: {found.fix})"


def test_each_plugin_runs_in_namespaces_of_its_own_and_still_serves(
    workspace: Workspace, start_simulator: Any
) -> None:
    workspace.login()
    simulator = start_simulator([HELLO_PYTHON, HELLO_NODE])
    status = simulator.status()
    assert status["host"]["containment"]["contained"] is True
    assert all(p["contained"] for p in status["plugins"])
    ours = namespaces("self")
    theirs = {plugin: namespaces(pid) for plugin, pid in pids(simulator).items()}
    for plugin, spaces in theirs.items():
        for name in NAMESPACES:
            assert spaces[name] != ours[name], f"{plugin} shares our {name} namespace"
    assert theirs[PY_ID]["net"] != theirs[NODE_ID]["net"], "one sandbox for two plugins"
    for plugin in (PY_ID, NODE_ID):  # requests reach them; they reach the host API
        body = simulator.get(f"/plugins/{plugin}/").json()
        assert body["contacts"] == 7, body


def test_a_plugin_sees_its_own_run_folder_and_none_of_the_developers_files(
    workspace: Workspace, start_simulator: Any
) -> None:
    workspace.login()
    simulator = start_simulator([HELLO_PYTHON, HELLO_NODE])
    pid = pids(simulator)[PY_ID]
    root = Path(f"/proc/{pid}/root")  # its mount view, seen from here
    config_home = Path(workspace.env["POWERX_CONFIG_HOME"])
    assert (config_home / "credentials.json").is_file()
    for hidden in (config_home, workspace.state_dir, HELLO_PYTHON, Path.home() / ".config"):
        assert not (root / hidden.relative_to("/")).exists(), f"{hidden} is visible"
    home = root / Path.home().relative_to("/")  # only what holds the DevKit's interpreter
    needed = {
        p.relative_to(Path.home()).parts[0]
        for p in bwrap.devkit_paths()
        if p.is_relative_to(Path.home())
    }
    assert not home.exists() or set(os.listdir(home)) <= needed, os.listdir(home)
    runs = run_root(workspace.state_dir)
    assert (root / (runs / PY_ID).relative_to("/")).is_dir()
    assert not (root / (runs / NODE_ID).relative_to("/")).exists()
    seen = [p for p in (root / "proc").iterdir() if p.name.isdigit()]  # its /proc
    assert 0 < len(seen) < 10, [p.name for p in seen]
    assert not any(b"powerx.cli.main" in (p / "cmdline").read_bytes() for p in seen)


@pytest.fixture
def local_service() -> Iterator[int]:
    """A local HTTP service on this machine (outside any sandbox)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"local service"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()


CALLER = """
import urllib.request
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

async def call(request):
    port = request.query_params["port"]
    try:
        with urllib.request.urlopen(f"http://localhost:{port}/", timeout=5) as answer:
            return PlainTextResponse(answer.read().decode())
    except OSError as error:
        return PlainTextResponse(f"refused: {error}", status_code=502)

app = Starlette(routes=[Route("/call", call)])
"""


def test_a_local_service_the_manifest_names_is_reached_from_the_sandbox(
    workspace: Workspace, start_simulator: Any, tmp_path: Path, local_service: int
) -> None:
    workspace.login()
    manifest = python_manifest("com.example.caller") + f"egress: ['localhost:{local_service}']\n"
    plugin = write_plugin(tmp_path / "caller", manifest, {"app.py": CALLER})
    simulator = start_simulator([plugin])
    answer = simulator.get("/plugins/com.example.caller/call", params={"port": local_service})
    assert (answer.status_code, answer.text) == (200, "local service")


def test_with_the_sandbox_off_status_and_doctor_say_not_contained(
    workspace: Workspace, start_simulator: Any
) -> None:
    workspace.login()
    workspace.env["POWERX_SANDBOX"] = "off"
    simulator = start_simulator([HELLO_PYTHON])
    found = simulator.status()["host"]["containment"]
    assert found["contained"] is False and "off" in found["reason"], found
    assert namespaces(pids(simulator)[PY_ID])["net"] == namespaces("self")["net"]
    shown = workspace.powerx("host", "status")
    assert "not contained" in shown.stdout, shown.stdout
    doctor = workspace.powerx("doctor")
    assert "not contained" in doctor.stdout, doctor.stdout


def test_where_bubblewrap_is_missing_doctor_says_what_to_install(
    workspace: Workspace, tmp_path: Path
) -> None:
    bare = tmp_path / "bin"  # python and node, but no bwrap
    bare.mkdir()
    for tool in ("python3", "node"):
        found = next(
            Path(folder, tool)
            for folder in os.environ["PATH"].split(os.pathsep)
            if Path(folder, tool).is_file()
        )
        (bare / tool).symlink_to(found)
    workspace.login()
    env = {**workspace.env, "PATH": str(bare)}
    doctor = workspace.powerx("doctor", env=env)
    assert "not contained: bubblewrap (bwrap) is not installed" in doctor.stdout, doctor.stdout
    assert "apt-get install bubblewrap" in doctor.stdout
    required = workspace.powerx(
        "host", "start", "--mock", str(HELLO_PYTHON), env={**env, "POWERX_SANDBOX": "required"}
    )
    assert required.returncode != 0
    assert "sandbox_unavailable" in required.stderr + required.stdout
    assert "Traceback" not in required.stderr
