"""Faults during reloads (kill -9 of the simulator or of the plugin, an upload cut off
mid-body): the active artefact stays intact and serving, the audit chain verifies,
telemetry and audit reconcile, and no acknowledged reload is lost. (The same code as
benchmarks/fault_rounds.py, a few rounds.)"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from tests.conftest import REPO


def test_faulted_reloads_lose_nothing_acknowledged(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "fault_rounds", REPO / "benchmarks/fault_rounds.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["fault_rounds"] = bench
    spec.loader.exec_module(bench)
    report = bench.run(6, 11, tmp_path)
    assert report.rounds == 6
    assert report.simulator_kills + report.plugin_kills + report.dropped_uploads == 6
    assert report.simulator_kills >= 1, "the seed must include a simulator kill"
    assert report.acknowledged > 0
    assert report.failed_checks == []
    assert report.lost == 0
