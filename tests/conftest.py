"""Fixtures that run the real `powerx` CLI and a real simulator with real plugin processes.

Every test gets its own credential and state folders, so nothing touches the developer's
own login or project state, and each simulator listens on a free loopback port. The
simulator is started, awaited and stopped by `powerx.testing` (what plugin authors use):
these fixtures only give it a workspace.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from powerx.testing import SimulatorProcess, isolated_env, run_powerx

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
HELLO_PYTHON = EXAMPLES / "hello-python"
HELLO_NODE = EXAMPLES / "hello-node"


@dataclass
class Workspace:
    """An isolated place to run `powerx`: its own credential, state and working folder."""

    root: Path
    env: dict[str, str]

    @property
    def state_dir(self) -> Path:
        return Path(self.env["POWERX_STATE_DIR"])

    def powerx(
        self,
        *args: str,
        timeout: float = 60,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return run_powerx(*args, env=env or self.env, cwd=self.root, timeout=timeout)

    def login(self, *scopes: str) -> None:
        args = ["login", "--mock"] + [f"--scope={s}" for s in scopes]
        result = self.powerx(*args)
        assert result.returncode == 0, result.stderr

    def token(self) -> str:
        config_home = Path(self.env["POWERX_CONFIG_HOME"])
        return str(json.loads((config_home / "credentials.json").read_text())["token"])


def make_workspace(tmp_path: Path) -> Workspace:
    env = isolated_env(tmp_path)
    env["POWERX_CONFIG"] = str(REPO / "config/plugins/debug/host_simulator.yaml")
    root = tmp_path / "work"
    root.mkdir()
    return Workspace(root, env)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return make_workspace(tmp_path)


class RunningSimulator(SimulatorProcess):
    """A `powerx host start` process in the foreground, as a developer runs it, in a
    workspace (its credential and state); started at once, and (with ``--watch``) armed."""

    def __init__(self, workspace: Workspace, paths: list[Path], *extra: str) -> None:
        self.workspace = workspace
        super().__init__(
            paths,
            env=workspace.env,
            cwd=workspace.root,
            log_dir=Path(tempfile.mkdtemp(prefix="simulator-", dir=workspace.root.parent)),
            extra_args=extra,
        )
        try:
            self.start()
        except BaseException:
            self.stop()
            raise

    def ide_access(self, plugin: str) -> dict[str, Any]:
        """The plugin's IDE port and its secret, as `powerx debug vscode` gets them."""
        response = self.get(f"/internal/debug/sessions/{plugin}/ide", headers=self.debug_headers())
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture
def start_simulator(workspace: Workspace) -> Iterator[object]:
    """Start a simulator over some plugin folders; it is stopped after the test."""
    started: list[RunningSimulator] = []

    def start(paths: list[Path], *extra: str) -> RunningSimulator:
        simulator = RunningSimulator(workspace, paths, *extra)
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.stop()


def write_plugin(folder: Path, manifest: str, files: dict[str, str]) -> Path:
    """Create a plugin folder with a manifest and source files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "powerx.plugin.yaml").write_text(manifest)
    for name, content in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    return folder


PYTHON_APP = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def home(request):
    return JSONResponse({"ok": True})

app = Starlette(routes=[Route("/", home)])
"""


def python_manifest(
    plugin_id: str = "com.test.plugin",
    api: str = ">=2.3 <3",
    permissions: str = "[]",
    entry: str = "app.py:app",
) -> str:
    return (
        f"id: {plugin_id}\nname: Test\nversion: 1.0.0\nruntime: python3.11\n"
        f"entry: {entry}\nhost:\n  api: '{api}'\npermissions: {permissions}\n"
    )
