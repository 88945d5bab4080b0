"""The one line `powerx dev` prints per reload, and what a type check adds after it."""

from __future__ import annotations

from rich.console import Console

from powerx.cli.dev import format_outcome, format_type_check
from powerx.errors import PowerXError, Problem
from powerx.reload.executor import ReloadOutcome
from powerx.reload.type_checkers import TypeCheckState, TypeProblem
from powerx.reload.type_checks import TypeCheckReport

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


def type_report(state: TypeCheckState, count: int = 0) -> TypeCheckReport:
    problems = tuple(
        TypeProblem("src/index.ts", 10 + i, 5, "TS2551", f"Property 'nme{i}' does not exist.")
        for i in range(count)
    )
    return TypeCheckReport("com.x.p", "tsc", "tsconfig.json", state, problems, 512.3)


def test_type_errors_follow_the_reload_line_with_file_line_and_code() -> None:
    lines = plain(format_type_check(type_report("errors", 2), None) or "").splitlines()
    assert lines[0] == "⚠ com.x.p  2 type errors (tsc, 512 ms; the reload went ahead)"
    assert lines[1] == "    src/index.ts:10:5  TS2551 Property 'nme0' does not exist."
    assert lines[2] == "    src/index.ts:11:5  TS2551 Property 'nme1' does not exist."


def test_many_type_errors_list_the_first_and_count_the_rest() -> None:
    lines = plain(format_type_check(type_report("errors", 11), "errors") or "").splitlines()
    assert len(lines) == 1 + 8 + 1
    assert lines[-1] == "    ... 3 more: run tsc in the plugin folder"


def test_a_clean_check_is_said_once_after_errors_and_then_not_again() -> None:
    assert plain(format_type_check(type_report("clean"), "errors") or "") == (
        "✓ com.x.p  types clean (tsc, 512 ms)"
    )
    assert format_type_check(type_report("clean"), None) is not None  # the first check
    assert format_type_check(type_report("clean"), "clean") is None


def test_a_checker_that_is_not_installed_is_said_with_its_fix() -> None:
    report = TypeCheckReport(
        "com.x.p",
        "tsc",
        "tsconfig.json",
        "unavailable",
        message="tsconfig.json asks for tsc, which is not installed.",
        fix="run `npm install --save-dev typescript` in /p to check types on each save.",
    )
    assert plain(format_type_check(report, None) or "") == (
        "· com.x.p  tsconfig.json asks for tsc, which is not installed.  fix: run `npm install "
        "--save-dev typescript` in /p to check types on each save."
    )
