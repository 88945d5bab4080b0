"""`host status`/`stop` from a plugin folder, `doctor`'s port check, `host artefacts`."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from powerx.testing import SimulatorProcess, run_powerx, wait_until
from tests.conftest import (
    HELLO_PYTHON,
    PYTHON_APP,
    Workspace,
    python_manifest,
    write_plugin,
)

PY_ID = "com.example.hello-python"


def powerx_in(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_powerx(*args, env=env, cwd=folder)


def test_status_and_stop_find_the_simulator_from_a_plugin_folder(
    workspace: Workspace, tmp_path: Path
) -> None:
    workspace.login()
    # As a developer runs it: no POWERX_STATE_DIR, the state is ./.powerx where it started.
    env = {k: v for k, v in workspace.env.items() if k != "POWERX_STATE_DIR"}
    project = workspace.root
    inside = project / "plugin-a"
    shutil.copytree(HELLO_PYTHON, inside, ignore=shutil.ignore_patterns("__pycache__"))
    (inside / "src").mkdir()
    outside = write_plugin(tmp_path / "elsewhere" / "plugin-b", python_manifest(), {})
    (outside / "app.py").write_text(PYTHON_APP)
    unrelated = tmp_path / "unrelated"
    unrelated.mkdir()
    simulator = SimulatorProcess(
        [inside, outside], env=env, cwd=project, log_dir=tmp_path / "simulator"
    )
    try:
        simulator.start()
        assert simulator.state_dir == project / ".powerx"
        for folder in (inside / "src", outside):  # a parent's .powerx; the list of simulators
            result = powerx_in(folder, env, "host", "status")
            assert result.returncode == 0, (folder, result.stderr)
            assert PY_ID in result.stdout and "com.test.plugin" in result.stdout
        lost = powerx_in(unrelated, env, "host", "status")
        assert lost.returncode == 1 and "host_not_running" in lost.stderr
        stopped = powerx_in(outside, env, "host", "stop")
        assert stopped.returncode == 0, stopped.stderr
        assert simulator.process is not None
        assert simulator.process.wait(timeout=30) == 0, simulator.output()
    finally:
        simulator.stop()
    registry = Path(env["POWERX_CONFIG_HOME"]) / "simulators"
    assert list(registry.glob("*.json")) == []  # a stopped simulator leaves the list


def time_wait_port() -> int:
    """A loopback port as a stopped simulator leaves it: its last connection in TIME-WAIT
    (the side that closed first keeps it, here the server's), nothing listening. The
    listener sets SO_REUSEADDR as the simulator's does; Linux lets a new listener with
    SO_REUSEADDR bind beside such a connection."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port: int = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = listener.accept()
            accepted.close()
            assert client.recv(1) == b""  # its close has arrived
    return port


def doctor_port_line(workspace: Workspace, port: int, **env: str) -> str:
    result = workspace.powerx("doctor", env={**workspace.env, "POWERX_HTTP_PORT": str(port), **env})
    return next(line for line in result.stdout.splitlines() if re.match(r"\W*port\s", line))


def test_doctor_takes_a_time_wait_port_as_free_and_names_the_simulator_on_a_port(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    port = time_wait_port()
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # without SO_REUSEADDR it looks taken
    assert "is free" in doctor_port_line(workspace, port)
    workspace.login()
    simulator = start_simulator([HELLO_PYTHON])
    sim_port = json.loads((workspace.state_dir / "host.json").read_text())["port"]
    own = doctor_port_line(workspace, sim_port)
    assert f"used by this project's simulator (pid {simulator.process.pid})" in own
    other = doctor_port_line(workspace, sim_port, POWERX_STATE_DIR=str(tmp_path / "other"))
    assert f"used by the simulator of {tmp_path} (pid {simulator.process.pid})" in other


def test_host_artefacts_lists_what_rollback_to_accepts(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = tmp_path / "hello-python"
    shutil.copytree(HELLO_PYTHON, plugin, ignore=shutil.ignore_patterns("__pycache__"))
    simulator = start_simulator([plugin], "--watch")
    source = plugin / "app.py"

    def serves(text: str) -> bool:
        response = simulator.get(f"/plugins/{PY_ID}/")
        return response.status_code == 200 and text in response.text

    # start_simulator returns once the watcher is armed
    source.write_text(source.read_text().replace('"hello from python"', '"second artefact"'))
    assert wait_until(lambda: serves("second artefact"), timeout_s=30)
    listed = workspace.powerx("host", "artefacts", PY_ID, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["serving"], r["previous"], r["generation"]) for r in rows] == [
        (True, False, 2),
        (False, True, 1),
    ]
    assert all(len(r["digest"]) == 64 and r["served_at"] > 0 for r in rows)
    table = workspace.powerx("host", "artefacts", PY_ID)
    assert rows[0]["digest"][:12] in table.stdout and "serving" in table.stdout
    back = workspace.powerx("host", "rollback", PY_ID, "--to", rows[1]["digest"][:10])
    assert back.returncode == 0, back.stderr
    assert serves("hello from python")
    missing = workspace.powerx("host", "rollback", PY_ID, "--to", "0000000000")
    assert missing.returncode == 1
    assert f"powerx host artefacts {PY_ID}" in missing.stderr
