"""The simulator is safe to run on a laptop: browsers on other sites cannot drive it, and
plugins never see the developer's credential."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HELLO_NODE, HELLO_PYTHON, RunningSimulator, Workspace


@pytest.fixture
def simulator(workspace: Workspace, start_simulator: Any, tmp_path: Path) -> RunningSimulator:
    workspace.login()
    python = tmp_path / "hello-python"
    node = tmp_path / "hello-node"
    shutil.copytree(HELLO_PYTHON, python)
    shutil.copytree(HELLO_NODE, node, symlinks=True)
    started: RunningSimulator = start_simulator([python, node])
    return started


def test_a_rebound_host_name_is_refused(simulator: RunningSimulator) -> None:
    headers = {**simulator.debug_headers(), "host": "attacker.example:8787"}
    response = simulator.get("/internal/debug/status", headers=headers)
    assert response.status_code == 421
    assert response.json()["error"] == "host_forbidden"
    assert simulator.get("/metrics", headers={"host": "attacker.example"}).status_code == 421
    # The simulator's own names and addresses still work.
    for host in ("127.0.0.1", "localhost"):
        ok = simulator.get(
            "/internal/debug/status", headers={**simulator.debug_headers(), "host": host}
        )
        assert ok.status_code == 200, host


def test_a_cross_site_post_cannot_change_state(simulator: RunningSimulator) -> None:
    headers = {**simulator.debug_headers(), "origin": "https://evil.example"}
    refused = simulator.request("POST", "/internal/debug/cache/clear", headers=headers)
    assert refused.status_code == 403
    assert refused.json()["error"] == "origin_forbidden"
    same_site = {**simulator.debug_headers(), "origin": simulator.url}
    assert (
        simulator.request("POST", "/internal/debug/cache/clear", headers=same_site).status_code
        == 200
    )


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_plugins_never_see_the_developer_credential(
    simulator: RunningSimulator, workspace: Workspace
) -> None:
    token = workspace.token()
    config_home = workspace.env["POWERX_CONFIG_HOME"]
    plugins = simulator.status()["plugins"]
    assert isinstance(plugins, list) and len(plugins) == 2
    for plugin in plugins:
        pid = plugin["pid"]
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        for secret in (token.encode(), config_home.encode(), b"POWERX_CONFIG_HOME"):
            assert secret not in environ, (plugin["id"], secret)
            assert secret not in cmdline, (plugin["id"], secret)
        # Nothing the plugin can read in its working folder holds the credential either.
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        for file in cwd.rglob("*"):
            if file.is_file() and "node_modules" not in file.parts:
                assert token.encode() not in file.read_bytes(), file
