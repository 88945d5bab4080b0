"""Where generations run from: a private folder in RAM when there is a safe one."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from powerx import paths


@pytest.fixture
def ram(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "shm"
    folder.mkdir()
    monkeypatch.setattr(paths, "RAM_DIR", folder)
    monkeypatch.delenv("POWERX_RUN_DIR", raising=False)
    return folder


def test_a_private_folder_in_ram_per_project(ram: Path, tmp_path: Path) -> None:
    one = paths.run_root(tmp_path / "a" / ".powerx")
    other = paths.run_root(tmp_path / "b" / ".powerx")
    mine = ram / f"powerx-{os.getuid()}"
    assert one.parent == other.parent == mine
    assert one != other
    assert stat.S_IMODE(mine.stat().st_mode) == 0o700
    assert paths.run_root(tmp_path / "a" / ".powerx") == one  # stable across starts


def test_a_folder_others_can_write_is_not_used(ram: Path, tmp_path: Path) -> None:
    planted = ram / f"powerx-{os.getuid()}"
    planted.mkdir(mode=0o777)
    planted.chmod(0o777)
    state = tmp_path / ".powerx"
    assert paths.run_root(state) == state / "run"


def test_a_link_planted_in_its_place_is_not_followed(ram: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (ram / f"powerx-{os.getuid()}").symlink_to(elsewhere)
    state = tmp_path / ".powerx"
    assert paths.run_root(state) == state / "run"


def test_a_small_ram_disk_is_not_used(
    ram: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paths, "RAM_MIN_FREE_BYTES", 1 << 62)
    state = tmp_path / ".powerx"
    assert paths.run_root(state) == state / "run"


def test_no_ram_disk_means_the_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "RAM_DIR", tmp_path / "missing")
    monkeypatch.delenv("POWERX_RUN_DIR", raising=False)
    state = tmp_path / ".powerx"
    assert paths.run_root(state) == state / "run"


def test_an_explicit_run_dir_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERX_RUN_DIR", str(tmp_path / "runs"))
    assert paths.run_root(tmp_path / ".powerx") == tmp_path / "runs"
