"""The one line `powerx dev` prints per reload."""

from __future__ import annotations

from rich.console import Console

from powerx.cli.dev import format_outcome
from powerx.reload.executor import ReloadOutcome

TIMINGS = {"build_ms": 4.2, "upload_ms": 0.4, "start_ms": 21.0, "swap_ms": 1.1}


def plain(markup: str) -> str:
    console = Console(width=200, color_system=None)
    with console.capture() as captured:
        console.print(markup)
    return captured.get().strip()


def test_a_reload_line_names_generation_total_and_phases() -> None:
    outcome = ReloadOutcome("com.x.p", True, ["app.py"], 33.4, 7, "ok", TIMINGS)
    line = plain(format_outcome(outcome))
    assert line == "✓ com.x.p  gen 7  33 ms  (build 4 · upload 0 · start 21 · swap 1)  app.py"


def test_a_debugged_reload_says_how_many_breakpoints_came_along() -> None:
    debug = {"breakpoints": 2, "verified": 1, "replay_ms": 4.4}
    outcome = ReloadOutcome("com.x.p", True, ["app.py"], 80.0, 8, "ok", TIMINGS, debug=debug)
    assert "swap 1 · 1/2 breakpoints in 4)" in plain(format_outcome(outcome))
