"""`powerx doctor` finds the Go toolchain and Delve, or says what to install."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.conftest import EXAMPLES, Workspace

HELLO_GO = EXAMPLES / "hello-go"


def checks(workspace: Workspace, *args: str) -> dict[str, dict[str, Any]]:
    result = workspace.powerx("doctor", "--json", *args)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {line["name"]: line for line in lines}


def test_doctor_reports_go_and_delve_versions(workspace: Workspace) -> None:
    found = checks(workspace)
    go, dlv = found["go"], found["dlv"]
    assert go["status"] == "ok" and go["detail"].startswith("go 1.")
    assert shutil.which("go") in go["detail"]
    assert dlv["status"] == "ok" and dlv["detail"].startswith("dlv 1.")


def test_a_configured_go_path_is_used_and_a_wrong_one_fails_go_plugins(
    workspace: Workspace, tmp_path: Path
) -> None:
    go = shutil.which("go")
    assert go is not None
    workspace.env["POWERX_GO"] = go
    assert checks(workspace)["go"]["status"] == "ok"
    workspace.env["POWERX_GO"] = str(tmp_path / "no-go")
    workspace.env["POWERX_DLV"] = str(tmp_path / "no-dlv")
    found = checks(workspace)  # no Go plugin named: a warning only
    assert found["go"]["status"] == "warn" and "POWERX_GO" in found["go"]["detail"]
    plugin = shutil.copytree(HELLO_GO, tmp_path / "hello-go")
    found = checks(workspace, str(plugin))
    assert found["go"]["status"] == "fail"
    assert "apt-get install golang-go" in found["go"]["fix"]
    assert found["dlv"]["status"] == "fail" and "apt-get install delve" in found["dlv"]["fix"]
    workspace.login()
    result = workspace.powerx("host", "start", "--mock", str(plugin), timeout=60)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "go_missing" in result.stdout + result.stderr
