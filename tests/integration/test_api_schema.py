"""Schemathesis against the simulator's OpenAPI description (schemas/openapi.yaml): about a
thousand generated requests, with the developer credential and with a wrong one, and
not one answer may be a 5xx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import HELLO_PYTHON, REPO, RunningSimulator, Workspace
from tests.integration.test_hot_reload import copy_example

SPEC = REPO / "schemas" / "openapi.yaml"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.fixture
def simulator(workspace: Workspace, tmp_path: Path, start_simulator: Any) -> RunningSimulator:
    workspace.login()
    started: RunningSimulator = start_simulator([copy_example(HELLO_PYTHON, tmp_path / "p")])
    return started


@pytest.mark.parametrize("credential", ["developer", "wrong"])
def test_no_generated_request_gets_a_server_error(
    simulator: RunningSimulator, workspace: Workspace, credential: str
) -> None:
    token = workspace.token() if credential == "developer" else "pxd_not-a-credential"
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            str(SPEC),
            "--url",
            simulator.url,
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "25",
            "--request-timeout",
            "20",
            "--seed",
            "20261126",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
    assert simulator.get("/healthz").status_code == 200


def test_credentials_and_keys_outside_ascii_are_refused_not_crashed(
    simulator: RunningSimulator,
) -> None:
    odd = "Bearer caf\u00e9".encode("latin-1")
    status = httpx.get(
        simulator.url + "/internal/debug/status",
        headers=[(b"authorization", odd)],
        trust_env=False,
    )
    assert status.status_code == 401 and status.json()["error"]
    dashboard = httpx.get(simulator.url + "/dashboard?key=caf%C3%A9", trust_env=False)
    assert dashboard.status_code == 401
    cookie = httpx.get(
        simulator.url + "/internal/debug/alerts",
        headers=[(b"cookie", "powerx_dashboard=caf\u00e9".encode("latin-1"))],
        trust_env=False,
    )
    assert cookie.status_code == 401
