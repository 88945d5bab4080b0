"""Go backend plugins: ``go build`` of the plugin's program, incrementally.

A plugin in PowerXPluginBase's layout keeps its Go module in ``backend/`` (``go.mod``),
its program in ``backend/cmd/plugin`` and runs ``backend/bin/plugin``. Without a
``build.command`` such a plugin is built with ``go build -o bin/plugin ./cmd/plugin`` in
the module folder (``go build -o backend/bin/plugin ./backend/cmd/plugin`` when
``go.mod`` is at the plugin's root); a ``build.command`` that runs ``go`` is run the
same way. Either gets:

- Go's build cache in the DevKit's state folder (``GOCACHE``), kept between builds, so a
  reload recompiles only the packages a save touched and relinks (~0.3 s for the example);
- ``GOPROXY=off``: a build never fetches modules (these machines cannot reach the module
  proxy; a missing module is reported at once instead of after a network timeout);
- with a debugger attached, ``-gcflags=all=-N -l`` (no optimisation, no inlining), so
  breakpoints bind to the lines written and variables are readable;
- a compile error as ``build_failed`` naming ``file:line:col`` relative to the plugin
  folder, with one problem per error Go reports.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from powerx.bundling.toolchain import go_executable
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError, Problem
from powerx.manifest import Manifest

BUILD_TIMEOUT_S = 300.0
DEBUG_GCFLAGS = "-gcflags=all=-N -l"
# Where a Go module lives in a plugin folder, in the order looked for.
_MODULE_DIRS = ("backend", "")
# `path/to/file.go:12:5: message` (column optional: the linker and some errors omit it).
_COMPILE_ERROR = re.compile(
    r"^(?P<file>[^\s:][^:]*\.go):(?P<line>\d+)(?::(?P<column>\d+))?: (?P<text>.+)$"
)

__all__ = ["DEBUG_GCFLAGS", "GoBuild", "go_build_for", "run_go_build"]


@dataclass(frozen=True)
class GoBuild:
    """One ``go build`` of a plugin: the command (without the ``go``), where it runs
    (relative to the plugin folder) and how it reads in the reload line."""

    arguments: tuple[str, ...]
    module_dir: str  # "backend", or "" for the plugin folder itself
    command: str

    def argv(self, go: str, debug: bool) -> list[str]:
        arguments = list(self.arguments)
        if debug and arguments[:1] == ["build"]:
            arguments.insert(1, DEBUG_GCFLAGS)
        return [go, *arguments]


def go_build_for(manifest: Manifest, root: Path) -> GoBuild | None:
    """The Go build of a backend plugin, if it has one: its ``build.command`` when that
    runs ``go``, else the default for a Go module in ``backend/`` or at the root whose
    program is ``backend.entry``."""
    if not manifest.is_backend or manifest.backend is None:
        return None
    command = manifest.build.command if manifest.build else None
    if command:
        words = _split(command)
        if not words or Path(words[0]).name != "go":
            return None
        return GoBuild(tuple(words[1:]), "", command)
    module = next((d for d in _MODULE_DIRS if (root / d / "go.mod").is_file()), None)
    if module is None:
        return None
    entry = PurePosixPath(_split(manifest.backend.entry)[0])
    if entry.is_absolute() or ".." in entry.parts or (module and entry.parts[0] != module):
        return None  # not a program inside the module: not a build this can guess
    # bin/<name> is built from cmd/<name> beside it (backend/bin/plugin: backend/cmd/plugin).
    main = entry.parent.parent / "cmd" / entry.name
    inside = len(PurePosixPath(module).parts)
    program = PurePosixPath(*entry.parts[inside:])
    package = f"./{PurePosixPath(*main.parts[inside:])}" if (root / main).is_dir() else "."
    arguments = ("build", "-o", str(program), package)
    shown = shlex.join(["go", *arguments])
    return GoBuild(arguments, module, f"cd {module} && {shown}" if module else shown)


def _split(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return []


def go_environment(cache: Path) -> dict[str, str]:
    """The developer's environment with the build cache in the state folder and module
    downloads off."""
    env = dict(os.environ)
    env.update({"GOCACHE": str(cache), "GOPROXY": "off", "GOTOOLCHAIN": "local"})
    return env


def run_go_build(build: GoBuild, root: Path, cache: Path, debug: bool = False) -> None:
    """Run ``build`` in the plugin folder ``root``; a failure raises ``build_failed``
    naming each error's ``file:line:col`` (relative to ``root``)."""
    cache.mkdir(parents=True, exist_ok=True)
    argv = build.argv(go_executable(), debug)
    try:
        completed = subprocess.run(
            argv,
            cwd=root / build.module_dir,
            env=go_environment(cache),
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PowerXError(
            ErrorCode.BUILD_FAILED,
            f"`{build.command}` could not run: {error}",
            "check the Go toolchain (`powerx doctor`) and the build command.",
        ) from None
    if completed.returncode != 0:
        raise compile_error(build, completed.stderr or completed.stdout, root)


def compile_error(build: GoBuild, output: str, root: Path) -> PowerXError:
    """``build_failed`` from ``go build``'s output: the first error as ``file:line:col:
    message`` in the message, every error as a problem; without a located error, the
    output's tail."""
    problems: list[Problem] = []
    first: dict[str, str | int] = {}
    for line in output.splitlines():
        match = _COMPILE_ERROR.match(line.strip())
        if match is None:
            continue
        file = _relative(build.module_dir, match["file"], root)
        where = f"{file}:{match['line']}" + (f":{match['column']}" if match["column"] else "")
        problems.append(Problem(where, f"{where}: {match['text']}"))
        if not first:
            first = {"file": file, "line": int(match["line"]), "column": int(match["column"] or 0)}
    if not problems:
        tail = output.strip()[-600:] or "no output"
        return PowerXError(
            ErrorCode.BUILD_FAILED,
            f"`{build.command}` failed: {tail}",
            f"run `{build.command}` in {root} and fix what it reports.",
        )
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return PowerXError(
        ErrorCode.BUILD_FAILED,
        f"Build error in {problems[0].message}{more}",
        "fix the code at that line and save again; the previous build keeps serving.",
        problems=problems,
        details=first,
    )


def _relative(module_dir: str, file: str, root: Path) -> str:
    """A path Go printed (relative to the module folder, or absolute) as one relative to
    the plugin folder."""
    path = Path(file)
    if path.is_absolute():
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            return file
    return (PurePosixPath(module_dir) / PurePosixPath(file.removeprefix("./"))).as_posix()
