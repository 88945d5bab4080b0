"""Run trees (unpacked artefacts) live as long as a generation runs from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from powerx.bundling import BuildSession
from powerx.paths import RAM_DIR, run_root
from powerx.testing import wait_until
from tests.conftest import HELLO_NODE, RunningSimulator, Workspace
from tests.integration.test_hot_reload import (
    NODE_ID,
    copy_example,
    greeting,
    plugin_status,
    push,
    set_node_greeting,
    start_example,
)


def trees(root: Path) -> set[str]:
    """The unpacked trees under a run root (one folder per plugin, a tree per digest)."""
    if not root.is_dir():
        return set()
    return {tree.name for folder in root.iterdir() for tree in folder.iterdir()}


def test_only_running_generations_keep_a_run_tree(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    simulator, plugin = start_example(
        workspace, start_simulator, HELLO_NODE, tmp_path / "hello-node"
    )
    root = run_root(workspace.state_dir)
    session = BuildSession(plugin, tmp_path / "build")
    try:
        for version in range(5):
            set_node_greeting(plugin, f"v{version}")
            assert push(simulator, plugin, session).status_code == 200
            assert greeting(simulator, NODE_ID) == f"v{version}"
        set_node_greeting(plugin, "never served")  # and the start fails at load:
        (plugin / "src" / "index.ts").write_text(
            (plugin / "src" / "index.ts").read_text() + "\nthrow new Error('at load');\n"
        )
        assert push(simulator, plugin, session).status_code == 422
    finally:
        session.close()
    active = plugin_status(simulator, NODE_ID)["digest"]
    # The generation before the last stops after its successor's first request.
    wait_until(lambda: trees(root), accept=lambda found: found == {active}, what=f"only {active}")

    simulator.stop()
    if root.is_relative_to(RAM_DIR):
        assert not root.exists(), "the RAM run trees outlived the simulator"
    assert (workspace.state_dir / "artefacts" / active).is_file()  # archives stay on disk


def test_run_trees_left_by_a_killed_simulator_go_at_the_next_start(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    root = run_root(workspace.state_dir)
    if not root.is_relative_to(RAM_DIR):
        return  # under the state dir they are kept, as before (no RAM to give back)
    stale = root / NODE_ID / ("0" * 64)
    stale.mkdir(parents=True)
    (stale / "artefact.json").write_text("{}")
    plugin = copy_example(HELLO_NODE, tmp_path / "hello-node")
    simulator: RunningSimulator = start_simulator([plugin])
    assert not stale.exists()
    assert trees(root) == {plugin_status(simulator, NODE_ID)["digest"]}
