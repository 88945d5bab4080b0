"""The checks a breakpoint passes before it is stored: a plugin the debugger supports, a
file of the serving artefact (Python) or of the plugin's sources (Node), a line inside it,
a condition that compiles (Python), and a place not held by a breakpoint of another role.
All problems of a list are reported at once, each with its field and a fix."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from powerx.debug.breakpoints import Breakpoint, BreakpointSpec
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError, Problem

if TYPE_CHECKING:
    from powerx.debug.debugger import ServedPlugins

__all__ = ["DEBUGGABLE_RUNTIMES", "check_breakpoints", "is_file", "refuse_another_role"]

# "go": a Go backend program (a program runtime built with go), run under Delve.
DEBUGGABLE_RUNTIMES = frozenset({"python3.11", "node18", "go"})
_SOURCE_SUFFIXES = {
    "python3.11": (".py",),
    "go": (".go",),
    "node18": (".ts", ".tsx", ".mts", ".js", ".mjs", ".cjs"),
}


def check_breakpoints(plugins: ServedPlugins, plugin: str, specs: list[BreakpointSpec]) -> None:
    """Each breakpoint must name a file of the serving artefact, a line inside it, and
    (Python) a condition that compiles; all problems at once, before any change."""
    runtime = plugins.runtime_of(plugin)
    if runtime is None:
        raise PowerXError(
            ErrorCode.PLUGIN_NOT_FOUND,
            f"No plugin {plugin!r} is mounted.",
            "see `powerx host status` for the mounted plugins.",
            status=404,
        )
    if runtime not in DEBUGGABLE_RUNTIMES:
        raise PowerXError(
            ErrorCode.DEBUG_RUNTIME_UNSUPPORTED,
            f"{plugin} runs on {runtime}, which the debugger does not support.",
            "debug Python (python3.11) or Node (node18) handlers, a backend whose "
            "backend.entry starts python or node (uvicorn, gunicorn, a .py or .js file ...), "
            "or a Go backend (built with go, debugged with Delve).",
            status=422,
        )
    # Python: the files the serving artefact holds; Node: the TypeScript sources.
    root = plugins.code_root(plugin) if runtime == "python3.11" else plugins.source_dir_of(plugin)
    problems: list[Problem] = []
    for index, spec in enumerate(specs):
        where = f"breakpoints[{index}]"
        path = root / spec.file if root is not None else None
        if path is None or not is_file(path):
            known = _source_files(root, runtime) if root is not None else []
            hint = f" (files: {', '.join(known[:8])})" if known else ""
            problems.append(Problem(f"{where}.file", f"no file {spec.file!r} in the plugin{hint}"))
            continue
        lines = path.read_text(encoding="utf-8", errors="replace").count("\n") + 1
        if spec.line > lines:
            problems.append(
                Problem(
                    f"{where}.line",
                    f"{spec.file} has {lines} lines; {spec.line} is past the end",
                )
            )
        if spec.condition and runtime == "python3.11":
            try:
                compile(spec.condition, "<condition>", "eval")
            except SyntaxError as error:
                problems.append(
                    Problem(f"{where}.condition", f"not a Python expression: {error.msg}")
                )
    if problems:
        raise PowerXError(
            ErrorCode.BREAKPOINTS_INVALID,
            f"{len(problems)} problem(s) in the breakpoint list.",
            _fix_for(problems),
            status=422,
            problems=problems,
        )


def _source_files(root: Path, runtime: str) -> list[str]:
    suffixes = _SOURCE_SUFFIXES.get(runtime, ())
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.suffix in suffixes and "node_modules" not in p.parts
    )


def is_file(path: Path) -> bool:
    """False also for names the file system refuses (too long, NUL ...)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _fix_for(problems: list[Problem]) -> str:
    """The fix for what is actually wrong (a condition is not a file name problem)."""
    fixes = {
        ".file": "name files relative to the plugin folder (e.g. app.py, src/index.ts)",
        ".line": "choose a line inside the file",
        ".condition": "write the condition as a Python expression, e.g. name == 'ada'",
    }
    wanted = [
        fix for suffix, fix in fixes.items() if any(p.where.endswith(suffix) for p in problems)
    ]
    return "; ".join(wanted) + "." if wanted else "fix the named fields and try again."


def refuse_another_role(items: list[Breakpoint], spec: BreakpointSpec) -> None:
    """A place holds one breakpoint: changing a pause breakpoint into a log point (or any
    role into another) is said, not done behind the user's back."""
    existing = next((bp for bp in items if bp.key() == (spec.file, spec.line)), None)
    wanted = "log" if spec.log_message else spec.kind
    if existing is None or existing.role == wanted:
        return
    raise PowerXError(
        ErrorCode.BREAKPOINT_PLACE_TAKEN,
        f"{existing.label()} has breakpoint {existing.id} ({existing.role}); a {wanted} "
        "breakpoint there would replace it.",
        f"clear it first (`clear {existing.id}`), or choose another line.",
        status=409,
    )
