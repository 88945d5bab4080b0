"""The per-user list of running simulators and how a command finds its simulator."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from powerx import running


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("POWERX_CONFIG_HOME", str(tmp_path / "config-home"))
    monkeypatch.delenv("POWERX_STATE_DIR", raising=False)
    return tmp_path


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def info(pid: int, port: int = 8787) -> dict[str, object]:
    return {"url": f"http://127.0.0.1:{port}", "pid": pid, "port": port}


def test_entries_of_dead_simulators_are_dropped_when_the_list_is_read(home: Path) -> None:
    running.register(info(os.getpid()), home / "a" / ".powerx", [home / "a" / "p"])
    running.register(info(dead_pid(), 9000), home / "b" / ".powerx", [home / "b" / "p"])
    assert [entry["pid"] for entry in running.running()] == [os.getpid()]
    assert [p.name for p in running.registry_dir().iterdir()] == [f"{os.getpid()}.json"]
    running.unregister(os.getpid())
    assert running.running() == []


def test_a_plugin_folder_outside_the_project_finds_the_simulator_that_serves_it(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = home / "elsewhere" / "my-plugin"
    (plugin / "src").mkdir(parents=True)
    running.register(info(os.getpid()), home / "project" / ".powerx", [plugin])
    monkeypatch.chdir(plugin / "src")
    found = running.find_host_info()
    assert found is not None and found["pid"] == os.getpid()
    monkeypatch.chdir(home)
    assert running.find_host_info() is None


def test_a_subfolder_finds_the_live_simulator_of_a_parent_folder(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = home / "project" / ".powerx"
    state.mkdir(parents=True)
    (state / "host.json").write_text(json.dumps(info(dead_pid())))
    (home / "project" / "plugin").mkdir()
    monkeypatch.chdir(home / "project" / "plugin")
    assert running.find_host_info() is None  # a file left by a simulator that died
    (state / "host.json").write_text(json.dumps(info(os.getpid())))
    found = running.find_host_info()
    assert found is not None and found["pid"] == os.getpid()
    monkeypatch.setenv("POWERX_STATE_DIR", str(home / "pinned"))
    assert running.find_host_info() is None  # a pinned state folder is not searched for
