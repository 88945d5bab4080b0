"""Which type checker a plugin asks for, how to run it, and how its output reads.

A plugin opts in by having the checker's config: ``tsconfig.json`` runs ``tsc --noEmit``
from the plugin's own ``node_modules``; ``mypy.ini``, ``.mypy.ini``, ``[tool.mypy]`` in
``pyproject.toml`` or ``[mypy]`` in ``setup.cfg`` runs mypy (the plugin's ``.venv``, else
the DevKit's interpreter, else ``mypy`` on PATH: plugins run on the DevKit's interpreter, so
that one sees their imports). Their output becomes :class:`TypeProblem` s with file, line
and column, relative to the plugin folder as the checkers print them.
"""

from __future__ import annotations

import configparser
import importlib.util
import re
import shutil
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

MYPY_CONFIGS = ("mypy.ini", ".mypy.ini", "pyproject.toml", "setup.cfg")  # mypy's own order
# A problem's message is cut here: a TypeScript type can print as kilobytes.
MAX_MESSAGE_CHARS = 500

TypeCheckState = Literal["clean", "errors", "failed", "unavailable"]


@dataclass(frozen=True)
class TypeProblem:
    """One error a type checker reported."""

    file: str  # as the checker prints it: relative to the plugin folder
    line: int
    column: int
    code: str  # "TS2551", "assignment"
    message: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.column}" if self.file else "(project)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "message": self.message,
        }


Parser = Callable[[str], list[TypeProblem]]


@dataclass(frozen=True)
class TypeChecker:
    """A checker the plugin asks for and that is installed: run ``command`` in the folder."""

    tool: str  # "tsc" | "mypy"
    config: str  # the file that asked for it
    command: tuple[str, ...]
    parse: Parser


@dataclass(frozen=True)
class MissingChecker:
    """A checker the plugin's config asks for but that is not installed."""

    tool: str
    config: str
    fix: str


_TSC_LINE = re.compile(
    r"^(?:(?P<file>.+?)\((?P<line>\d+),(?P<column>\d+)\): )?error (?P<code>TS\d+): (?P<message>.*)$"
)
_MYPY_LINE = re.compile(
    r"^(?P<file>[^:\n]+?):(?P<line>\d+):(?:(?P<column>\d+):)? error: (?P<message>.*?)"
    r"(?:  \[(?P<code>[a-z0-9-]+)\])?$"
)


def _problem(match: re.Match[str], default_code: str = "") -> TypeProblem:
    return TypeProblem(
        file=match["file"] or "",
        line=int(match["line"] or 0),
        column=int(match["column"] or 0),
        code=match["code"] or default_code,
        message=match["message"][:MAX_MESSAGE_CHARS],
    )


def parse_tsc(output: str) -> list[TypeProblem]:
    """``tsc --pretty false`` output: ``src/index.ts(24,37): error TS2551: ...``, then
    indented lines that go on with the same message (folded into it)."""
    problems: list[TypeProblem] = []
    for line in output.splitlines():
        if match := _TSC_LINE.match(line):
            problems.append(_problem(match))
        elif problems and line.startswith(" ") and line.strip():
            last = problems[-1]
            message = f"{last.message} {line.strip()}"[:MAX_MESSAGE_CHARS]
            problems[-1] = TypeProblem(last.file, last.line, last.column, last.code, message)
    return problems


def parse_mypy(output: str) -> list[TypeProblem]:
    """mypy output with ``--show-column-numbers``: ``app.py:12:5: error: ...  [code]``
    (its notes are left out: they explain an error already listed)."""
    return [_problem(m, "misc") for line in output.splitlines() if (m := _MYPY_LINE.match(line))]


def _tsc(root: Path) -> TypeChecker | MissingChecker:
    binary = root / "node_modules" / ".bin" / ("tsc.cmd" if sys.platform == "win32" else "tsc")
    if not binary.exists():
        return MissingChecker(
            "tsc",
            "tsconfig.json",
            f"run `npm install --save-dev typescript` in {root} to check types on each save.",
        )
    command = (str(binary), "--noEmit", "--pretty", "false", "-p", "tsconfig.json")
    return TypeChecker("tsc", "tsconfig.json", command, parse_tsc)


def mypy_config(root: Path) -> tuple[str, bool] | None:
    """The mypy config mypy itself would read in ``root`` (file name), and whether it
    names the files to check; None if there is none."""
    for name in MYPY_CONFIGS:
        path = root / name
        if not path.is_file():
            continue
        if name == "pyproject.toml":
            try:
                section = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {})
            except (tomllib.TOMLDecodeError, UnicodeDecodeError):
                continue  # mypy would skip it too; the build reports a broken file
            if isinstance(section, dict) and isinstance(section.get("mypy"), dict):
                return name, "files" in section["mypy"]
            continue
        parser = configparser.ConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            continue
        if parser.has_section("mypy"):
            return name, parser.has_option("mypy", "files")
        if name.endswith("mypy.ini"):  # mypy takes it even without a [mypy] section
            return name, False
    return None


def _mypy_command(root: Path) -> tuple[str, ...] | None:
    own = root / ".venv" / "bin" / "mypy"
    if own.is_file():
        return (str(own),)
    if importlib.util.find_spec("mypy") is not None:
        return (sys.executable, "-m", "mypy")
    found = shutil.which("mypy")
    return (found,) if found else None


def _mypy(root: Path, cache_dir: Path) -> TypeChecker | MissingChecker | None:
    config = mypy_config(root)
    if config is None:
        return None
    name, names_files = config
    base = _mypy_command(root)
    if base is None:
        return MissingChecker(
            "mypy",
            name,
            f"run `{Path(sys.executable).name} -m pip install mypy` (or install it in "
            f"{root / '.venv'}) to check types on each save.",
        )
    options = (
        "--show-column-numbers",
        "--show-error-codes",
        "--no-color-output",
        "--no-error-summary",
        # Outside the plugin folder: a cache written there would be a save to reload.
        "--cache-dir",
        str(cache_dir),
    )
    targets = () if names_files else (".",)
    return TypeChecker("mypy", name, (*base, *options, *targets), parse_mypy)


def find_type_checkers(root: Path, cache_dir: Path) -> list[TypeChecker | MissingChecker]:
    """The checkers the plugin in ``root`` asks for (none: it has no checker config)."""
    found: list[TypeChecker | MissingChecker] = []
    if (root / "tsconfig.json").is_file():
        found.append(_tsc(root))
    if (mypy := _mypy(root, cache_dir)) is not None:
        found.append(mypy)
    return found
