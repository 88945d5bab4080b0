"""Plugins reloading concurrently under load: no request fails, memory stays bounded.
(Runs the same code as benchmarks/load_reload.py, at a smaller scale.)"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from tests.conftest import REPO


def _load_benchmark() -> object:
    spec = importlib.util.spec_from_file_location("load_reload", REPO / "benchmarks/load_reload.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["load_reload"] = module
    spec.loader.exec_module(module)
    return module


def test_four_plugins_reloading_under_load_drop_no_request(tmp_path: Path) -> None:
    bench = _load_benchmark()
    result = bench.run(4, 5, tmp_path)  # type: ignore[attr-defined]
    assert {p.runtime for p in result.plugins} == {"python", "node"}
    for plugin in result.plugins:
        assert plugin.served_edits == 5, plugin
        assert plugin.requests > 0
        assert plugin.failed == 0, plugin.errors[:3]
        # Loose sanity bounds only: a generation is tens of MB, never hundreds.
        assert 0 < plugin.peak_rss_kb < 400 * 1024, plugin
    assert 0 < result.simulator_peak_rss_kb < 600 * 1024
    assert bench.table(result).count("\n") == len(result.plugins) + 2  # type: ignore[attr-defined]
