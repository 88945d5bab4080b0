"""The harness judges a containment attempt on evidence it checks itself: a plugin's claim
that its own files, pids or hashes cannot back is not counted as getting through (a
sandboxed plugin sees its own /proc and its own small run root)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from tests.security.containment import Case, Facts, command_line, proof

ATTACKER, OTHER = "com.powerx.attack-python", "com.powerx.attack-node"


def _run_root(tmp_path: Path) -> Path:
    for plugin, digest in ((ATTACKER, "a" * 64), (OTHER, "b" * 64)):
        tree = tmp_path / "run" / "project" / digest
        tree.mkdir(parents=True, exist_ok=True)
        (tree / "artefact.json").write_text(json.dumps({"plugin": plugin}))
    return tmp_path / "run"


def _proof(tmp_path: Path, evidence: dict[str, Any], marker: str = "m") -> str | None:
    facts = Facts(_run_root(tmp_path), simulator_pid=1, plugin_pids={OTHER: os.getpid()})
    return proof(Case(evidence, marker, ATTACKER, OTHER, facts))


def test_a_file_counts_only_with_the_bytes_the_harness_reads(tmp_path: Path) -> None:
    secret = tmp_path / "credentials.json"
    secret.write_text('{"token": "t"}')
    digest = hashlib.sha256(secret.read_bytes()).hexdigest()
    assert _proof(tmp_path, {"kind": "file", "path": str(secret), "sha256": digest})
    wrong = {"kind": "file", "path": str(secret), "sha256": "0" * 64}
    assert _proof(tmp_path, wrong) is None


def test_a_tree_counts_only_if_it_is_the_other_plugins_under_the_run_root(
    tmp_path: Path,
) -> None:
    other = tmp_path / "run" / "project" / ("b" * 64)
    own = tmp_path / "run" / "project" / ("a" * 64)
    assert _proof(tmp_path, {"kind": "tree", "paths": [str(own), str(other)]})
    assert _proof(tmp_path, {"kind": "tree", "paths": [str(own), str(tmp_path)]}) is None


def test_a_write_counts_only_where_the_marker_is_and_the_marker_is_removed(
    tmp_path: Path,
) -> None:
    run = _run_root(tmp_path)
    marker = run / "project" / ("b" * 64) / ".powerx-attack-w"
    written = {"kind": "written", "path": str(marker), "owner": "other"}
    assert _proof(tmp_path, written, marker="w") is None  # nothing there
    marker.write_text("w")
    assert _proof(tmp_path, written, marker="w")
    assert not marker.exists()
    marker.write_text("w")
    assert _proof(tmp_path / "elsewhere", written, marker="w") is None  # another run root
    assert not marker.exists()


def test_a_process_counts_only_with_the_pid_and_its_command_line(tmp_path: Path) -> None:
    me = os.getpid()
    assert _proof(tmp_path, {"kind": "signalled", "processes": [[me, command_line(me)]]})
    # The same number in another PID namespace is another process.
    assert _proof(tmp_path, {"kind": "signalled", "processes": [[me, "bwrap --"]]}) is None
    assert _proof(tmp_path, {"kind": "visible", "processes": []}) is None
