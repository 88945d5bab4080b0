"""VS Code's own DAP test client (DebugClient from @vscode/debugadapter-testsupport, run by
tests/dap-client/drive.js) attaches once to a plugin's debug port and stops at its
breakpoint with the right locals after each of ten reloads."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from powerx.bundling import BuildSession
from tests.conftest import REPO, RunningSimulator, Workspace
from tests.integration.test_debugging import (
    PLUGIN,
    RETURN_LINE,
    debugged,  # noqa: F401 - the fixture
    edit,
    request_in_background,
)
from tests.integration.test_hot_reload import push

CLIENT_DIR = REPO / "tests" / "dap-client"


@pytest.fixture(scope="session")
def debug_client() -> Path:
    """drive.js with its npm dependency installed (from the lock file, once)."""
    if not (CLIENT_DIR / "node_modules" / "@vscode" / "debugadapter-testsupport").is_dir():
        npm = shutil.which("npm")
        assert npm, "npm is needed to install the DAP test client"
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=CLIENT_DIR,
            check=True,
            timeout=300,
        )
    return CLIENT_DIR / "drive.js"


def test_vscode_debugclient_stops_at_the_breakpoint_after_each_of_ten_reloads(
    debugged: tuple[RunningSimulator, Path],  # noqa: F811
    workspace: Workspace,
    debug_client: Path,
) -> None:
    simulator, plugin = debugged
    [status] = simulator.status()["plugins"]  # type: ignore[misc]
    local_file = str(plugin / "app.py")
    client = subprocess.Popen(
        [
            "node",
            str(debug_client),
            str(status["debug_port"]),
            local_file,
            str(RETURN_LINE),
            str(simulator.ide_access(PLUGIN)["secret"]),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert client.stdin is not None and client.stdout is not None

    def answer() -> dict[str, object]:
        line = client.stdout.readline()  # type: ignore[union-attr]
        assert line, client.stderr.read() if client.stderr else ""
        return dict(json.loads(line))

    session = BuildSession(plugin, workspace.state_dir / "test-build")
    try:
        ready = answer()
        assert ready["breakpoint"]["verified"] is True  # type: ignore[index]
        for version in range(1, 11):
            edit(plugin, f'GREETING = "v{version - 1}"', f'GREETING = "v{version}"')
            assert push(simulator, plugin, session).status_code == 200
            thread, result = request_in_background(simulator, f"/plugins/{PLUGIN}/?name=vs")
            client.stdin.write("go\n")
            client.stdin.flush()
            stop = answer()
            assert (stop["path"], stop["line"]) == (local_file, RETURN_LINE)
            assert stop["locals"]["message"] == f"'v{version} vs'"  # type: ignore[index]
            assert not {"terminated", "exited"} & set(stop["seen"])  # type: ignore[arg-type]
            thread.join(30)
            assert result["response"].json()["message"] == f"v{version} vs"
        client.stdin.write("done\n")
        client.stdin.close()
        assert client.wait(timeout=30) == 0, client.stderr.read() if client.stderr else ""
    finally:
        session.close()
        if client.poll() is None:
            client.kill()
