"""A handler plugin runs under `powerx host start --mock` with PowerX's plugin.yaml (as the
examples have it) and with the older powerx.plugin.yaml: it serves, reloads, and a pushed
artefact carrying plugin.yaml is checked by plugin.yaml's rules."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from powerx.bundling.pack import digest, pack
from powerx.bundling.session import BuildSession
from tests.conftest import HELLO_PYTHON, Workspace
from tests.integration.test_hot_reload import (
    PY_ID,
    copy_example,
    greeting,
    push,
    push_bytes,
    set_python_greeting,
)


def _as_plugin_yaml(tmp_path: Path) -> Path:
    plugin = copy_example(HELLO_PYTHON, tmp_path / "p")
    assert (plugin / "plugin.yaml").is_file()
    return plugin


@pytest.mark.parametrize("manifest_file", ["plugin.yaml", "powerx.plugin.yaml"])
def test_a_handler_example_serves_and_reloads_with_either_manifest_file(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, manifest_file: str
) -> None:
    workspace.login()
    plugin = _as_plugin_yaml(tmp_path)
    (plugin / "plugin.yaml").rename(plugin / manifest_file)
    simulator = start_simulator([plugin])
    assert greeting(simulator, PY_ID) == "hello from python"
    set_python_greeting(plugin, f"from {manifest_file}")
    response = push(simulator, plugin)
    assert response.status_code == 200, response.text
    assert greeting(simulator, PY_ID) == f"from {manifest_file}"


def test_a_pushed_plugin_yaml_is_checked_by_its_own_rules(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = _as_plugin_yaml(tmp_path)
    simulator = start_simulator([plugin])
    session = BuildSession(plugin, tmp_path / "build")
    try:
        built = session.build()
    finally:
        session.close()
    # An upload not built by `powerx dev` (the build would refuse this manifest itself).
    with tarfile.open(fileobj=io.BytesIO(built.data)) as archive:
        members = [(m.name, archive.extractfile(m).read()) for m in archive if m.isfile()]  # type: ignore[union-attr]
    bad_tool = b"tools:\n  - {id: t, name: T, endpoint: /x, input_schema: {type: objekt}}\n"
    members = [(n, data + bad_tool if n == "plugin.yaml" else data) for n, data in members]
    data = pack(members)
    response = push_bytes(simulator, data, digest(data))
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "manifest_invalid"
    [problem] = body["problems"]
    assert problem["where"] == "tools.0.input_schema" and "tool 't'" in problem["message"]
    assert greeting(simulator, PY_ID) == "hello from python"  # the old generation serves
