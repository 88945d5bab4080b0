"""The one line `powerx dev` prints per reload."""

from __future__ import annotations

from rich.console import Console

from powerx.cli.dev import format_outcome
from powerx.errors import PowerXError, Problem
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


def test_a_failed_reload_lists_every_problem_with_its_fix_after_the_fix_line() -> None:
    error = PowerXError(
        "manifest_invalid",
        "powerx.plugin.yaml: 1 problem(s) in the manifest.",
        "fix each field listed below.",
        problems=[Problem("version", "version: bad value 'x'", "use a SemVer version")],
    )
    outcome = ReloadOutcome("com.x.p", False, ["powerx.plugin.yaml"], 3.0, 4, error=error)
    lines = plain(format_outcome(outcome)).splitlines()
    assert [line.strip() for line in lines[1:]] == [
        "fix: fix each field listed below.",
        "• version: bad value 'x'",
        "fix: use a SemVer version",
        "generation 4 keeps serving",
    ]


def test_a_build_error_does_not_repeat_the_line_its_message_names() -> None:
    first, second = (Problem(f"app.py:{n}", f"app.py:{n}: invalid syntax") for n in (3, 9))
    error = PowerXError(
        "build_failed",
        "Syntax error in app.py:3: invalid syntax (and 1 more)",
        "fix it.",
        problems=[first, second],
    )
    outcome = ReloadOutcome("com.x.p", False, ["app.py"], 3.0, 4, error=error)
    text = plain(format_outcome(outcome))
    assert text.count("app.py:3") == 1 and "• app.py:9: invalid syntax" in text
