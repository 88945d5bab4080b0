"""A full disk and a read-only state folder, on a real (small) tmpfs under `.powerx/`.

Mounting needs root (CAP_SYS_ADMIN): the CI machines and the dev machines here have it.
Where it is missing the tests skip, saying so, rather than fake the file system.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HELLO_PYTHON, RunningSimulator, Workspace
from tests.integration.test_hot_reload import copy_example, greeting, push, set_python_greeting

PY_ID = "com.example.hello-python"


def _mount(target: Path, options: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")


@contextlib.contextmanager
def tmpfs(target: Path, options: str) -> Iterator[Path]:
    _mount(target, options)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


@contextlib.contextmanager
def read_only_bind(folder: Path) -> Iterator[None]:
    """Make one folder read-only in place (a read-only bind mount over itself)."""
    for command in (
        ["mount", "--bind", str(folder), str(folder)],
        ["mount", "-o", "bind,remount,ro", str(folder)],
    ):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Write until the file system is full; the filler is returned to be removed."""
    filler = folder / "filler"
    with filler.open("wb") as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    return filler


def test_a_full_or_read_only_disk_refuses_the_reload_clearly_and_keeps_what_serves(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    with tmpfs(tmp_path / "disk", "size=24m") as disk:
        workspace.env["POWERX_STATE_DIR"] = str(disk / "state")
        workspace.login()
        plugin = copy_example(HELLO_PYTHON, tmp_path / "hello-python")
        simulator: RunningSimulator = start_simulator([plugin])
        set_python_greeting(plugin, "before the disk filled")
        accepted = push(simulator, plugin)
        assert accepted.status_code == 200, accepted.text

        filler = fill(disk)
        set_python_greeting(plugin, "while the disk is full")
        refused = push(simulator, plugin)
        assert refused.status_code == 507, refused.text
        body = refused.json()
        assert body["error"] == "storage_full" and "free some space" in body["fix"]
        assert greeting(simulator, PY_ID) == "before the disk filled"

        os.remove(filler)
        set_python_greeting(plugin, "after space came back")
        acknowledged = push(simulator, plugin)
        assert acknowledged.status_code == 200
        assert greeting(simulator, PY_ID) == "after space came back"

        # The artefact store turns read-only while the simulator runs.
        with read_only_bind(disk / "state" / "artefacts"):
            set_python_greeting(plugin, "while the store is read-only")
            refused = push(simulator, plugin)
            assert refused.status_code == 507, refused.text
            assert refused.json()["error"] == "storage_read_only"
            assert greeting(simulator, PY_ID) == "after space came back"
        simulator.stop()
        assert workspace.powerx("audit", "verify").returncode == 0
        reconcile = workspace.powerx("telemetry", "reconcile", "--json")
        assert reconcile.returncode == 0, reconcile.stderr
        assert json.loads(reconcile.stdout)["differences"] == []

        # The active pointer names the last acknowledged artefact, nothing from a failure,
        # and a restart on this state comes up cleanly.
        pointer = disk / "state" / "plugins" / PY_ID / "active.json"
        assert json.loads(pointer.read_text())["digest"] == acknowledged.json()["digest"]
        again: RunningSimulator = start_simulator([plugin])
        assert greeting(again, PY_ID) == "while the store is read-only"  # rebuilt from source


def test_a_read_only_state_folder_is_refused_at_start_with_a_fix(
    workspace: Workspace, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "ro", "size=1m,ro") as read_only:
        workspace.env["POWERX_STATE_DIR"] = str(read_only / "state")
        workspace.login()
        result = workspace.powerx("host", "start", "--mock", "--port", "0", str(HELLO_PYTHON))
    assert result.returncode == 1
    assert "storage_read_only" in result.stderr and "POWERX_STATE_DIR" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
