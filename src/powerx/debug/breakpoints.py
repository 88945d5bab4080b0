"""The breakpoint set of each plugin, owned by the simulator and kept across reloads.

Breakpoints name files relative to the plugin's folder (``app.py``, ``src/index.ts``), so
they mean the same thing in every generation, whichever folder that generation runs from.
The set is saved under ``.powerx/debug/breakpoints/`` (atomic replace), so it also survives
a restart of the simulator.

When an edit moves code, each breakpoint follows its line, by its text, its function and
the lines around it (:mod:`powerx.debug.line_following`, which duplicated code cannot
fool); a line edited in place stays, and a line that was deleted, or whose new place is
not certain, leaves the breakpoint *unverified* with the reason, never silently dropped
or moved to a guess.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from powerx.debug.line_following import follow
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError, Problem, validation_problems

Kind = Literal["pause", "snapshot"]


class BreakpointSpec(BaseModel):
    """What a client asks for."""

    model_config = ConfigDict(extra="forbid")

    file: str = Field(min_length=1, max_length=1000)
    line: int = Field(ge=1, le=1_000_000)
    condition: str | None = Field(default=None, max_length=2000)
    hit_condition: str | None = Field(default=None, max_length=200)
    log_message: str | None = Field(default=None, max_length=2000)
    kind: Kind = "pause"


class Breakpoint(BreakpointSpec):
    """A breakpoint in the set: a stable id, and what the last generation made of it."""

    model_config = ConfigDict(extra="ignore")

    id: int
    verified: bool = False
    message: str | None = None  # why it is not verified
    hits: int = 0
    # "ide" when mirrored from an IDE's own inspector session (see debug/cdp_mirror.py):
    # the IDE may remove it again; a breakpoint the console set it never removes.
    origin: str | None = None

    def key(self) -> tuple[str, int]:
        return (self.file, self.line)

    def label(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def role(self) -> str:
        """What it does when reached: ``pause``, ``snapshot`` or ``log``."""
        return "log" if self.log_message else self.kind


# A log point's line carries its breakpoint's id to the simulator (debugpy tells only the
# text), so its hits are counted; the mark is taken off before the line is logged.
_LOG_MARK = re.compile(r"^\x1dpowerx-log:(\d+)\x1d")


def log_mark(breakpoint_id: int) -> str:
    return f"\x1dpowerx-log:{breakpoint_id}\x1d"


def read_log_mark(text: str) -> tuple[int | None, str]:
    """The log point a line came from (None: not a log point's), and the line without the
    mark."""
    found = _LOG_MARK.match(text)
    if found is None:
        return None, text
    return int(found.group(1)), text[found.end() :]


_HIT_CONDITION = re.compile(r"^\s*(==|>=|<=|>|<|%)?\s*(\d+)\s*$")
HIT_CONDITION_HELP = "3 (the third hit), >=3, >3, <3, <=3 or %3 (every third hit)"


def parse_hit_condition(text: str) -> tuple[str, int] | None:
    """A hit count as debugpy reads one: ``3`` is ``==3``; None when ``text`` is not one.

    Hits are counted per generation, like debugpy's, and only when the condition holds.
    """
    found = _HIT_CONDITION.match(text)
    if found is None:
        return None
    operator, count = found.group(1) or "==", int(found.group(2))
    return None if operator == "%" and count == 0 else (operator, count)


def normalise_file(file: str) -> str:
    """``./app.py`` and ``app.py`` name the same file; no absolute paths, no ``..``."""
    path = PurePosixPath(file.replace("\\", "/"))
    parts = [p for p in path.parts if p not in {"", "."}]
    if path.is_absolute() or ".." in parts or not parts:
        raise PowerXError(
            ErrorCode.BREAKPOINT_FILE_INVALID,
            f"Breakpoint file {file!r} is not a path inside the plugin.",
            "name the file relative to the plugin folder, e.g. app.py or src/index.ts.",
        )
    return "/".join(parts)


def parse_specs(raw: object) -> list[BreakpointSpec]:
    """Validate a client's list of breakpoints; every problem at once, before any change."""
    items = raw.get("breakpoints") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise PowerXError(
            ErrorCode.BREAKPOINTS_INVALID,
            "The body must be a JSON object with a list under 'breakpoints'.",
            'send {"breakpoints": [{"file": "app.py", "line": 12}]}.',
        )
    specs: list[BreakpointSpec] = []
    problems: list[Problem] = []
    for index, item in enumerate(items):
        try:
            spec = BreakpointSpec.model_validate(item)
            spec.file = normalise_file(spec.file)
            if spec.hit_condition is not None and parse_hit_condition(spec.hit_condition) is None:
                problems.append(
                    Problem(
                        f"breakpoints[{index}].hit_condition",
                        f"{spec.hit_condition!r} is not a hit count: use {HIT_CONDITION_HELP}",
                    )
                )
                continue
            specs.append(spec)
        except ValidationError as error:
            problems += validation_problems(error, prefix=f"breakpoints[{index}].")
        except PowerXError as error:
            problems.append(Problem(f"breakpoints[{index}].file", error.message))
    if problems:
        raise PowerXError(
            ErrorCode.BREAKPOINTS_INVALID,
            f"{len(problems)} problem(s) in the breakpoint list.",
            "fix the named fields and send the list again.",
            problems=problems,
        )
    return specs


def follow_line(old_lines: Sequence[str], new_lines: Sequence[str], line: int) -> int | None:
    """Where 1-based ``line`` of the old text is in the new text; None when it was deleted
    or its place is not certain (see :mod:`powerx.debug.line_following`)."""
    return follow(old_lines, new_lines, line).line


def not_followed(bp: Breakpoint) -> bool:
    """An edit took its line away, or left its place uncertain: it stays listed,
    unverified, where it was, and is not set until the user sets it again."""
    return bool(bp.message and bp.message.startswith(_NOT_FOLLOWED))


_NOT_FOLLOWED = ("line removed", "uncertain after an edit")


class BreakpointSet:
    """One plugin's breakpoints, persisted after every change."""

    def __init__(self, plugin: str, path: Path) -> None:
        self.plugin = plugin
        self.path = path
        self.items: list[Breakpoint] = []
        self._next_id = 1
        if path.exists():
            self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.items = [Breakpoint.model_validate(item) for item in data["breakpoints"]]
        except (OSError, ValueError, KeyError, TypeError, ValidationError):
            self.items = []  # a damaged file loses only breakpoints, never blocks start-up
        self._next_id = max((bp.id for bp in self.items), default=0) + 1

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"plugin": self.plugin, "breakpoints": [bp.model_dump() for bp in self.items]}
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".bp-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1)
        os.replace(temp, self.path)

    def files(self) -> list[str]:
        return sorted({bp.file for bp in self.items})

    def in_file(self, file: str) -> list[Breakpoint]:
        return [bp for bp in self.items if bp.file == file]

    def get(self, breakpoint_id: int) -> Breakpoint | None:
        return next((bp for bp in self.items if bp.id == breakpoint_id), None)

    def _merge(self, specs: Iterable[BreakpointSpec], keep: list[Breakpoint]) -> list[Breakpoint]:
        """New entries for ``specs``; one that matches a kept breakpoint's place keeps its id."""
        by_place = {bp.key(): bp for bp in keep}
        merged = []
        for spec in specs:
            old = by_place.pop((spec.file, spec.line), None)
            if old is not None:
                # Set again: what the last edit said about it (left behind) no longer holds.
                merged.append(old.model_copy(update={**spec.model_dump(), "message": None}))
            else:
                merged.append(Breakpoint(id=self._next_id, **spec.model_dump()))
                self._next_id += 1
        return merged

    def replace_all(self, specs: Sequence[BreakpointSpec]) -> None:
        self.items = self._merge(specs, self.items)
        self.save()

    def replace_file(self, file: str, specs: Sequence[BreakpointSpec]) -> list[Breakpoint]:
        """DAP's setBreakpoints: the file's whole set is replaced; other files are kept."""
        others = [bp for bp in self.items if bp.file != file]
        mine = self._merge(specs, self.in_file(file))
        self.items = others + mine
        self.save()
        return mine

    def add(self, spec: BreakpointSpec) -> Breakpoint:
        existing = next((bp for bp in self.items if bp.key() == (spec.file, spec.line)), None)
        if existing is not None:
            self.items.remove(existing)
        [added] = self._merge([spec], [existing] if existing else [])
        self.items.append(added)
        self.save()
        return added

    def remove(self, breakpoint_id: int | None = None, file: str | None = None) -> int:
        """Remove one breakpoint, a file's, or (no arguments) all; returns how many went."""
        before = len(self.items)
        self.items = [
            bp
            for bp in self.items
            if not (
                (breakpoint_id is None and file is None)
                or bp.id == breakpoint_id
                or (breakpoint_id is None and bp.file == file)
            )
        ]
        self.save()
        return before - len(self.items)

    def follow_edit(self, file: str, old_text: str, new_text: str) -> list[str]:
        """Move the file's breakpoints with an edit; returns a line per change for the log."""
        if old_text == new_text:
            return []
        old_lines, new_lines = old_text.splitlines(), new_text.splitlines()
        notes = []
        for bp in self.in_file(file):
            if not_followed(bp):
                continue  # already left behind: it stays where it was, unverified
            followed = follow(old_lines, new_lines, bp.line)
            moved = followed.line
            if moved is None and followed.reason == "line removed":
                bp.verified = False
                bp.message = f"line removed by an edit (was {bp.label()}); set it again"
                notes.append(f"breakpoint {bp.id} at {bp.label()} is unverified: its line is gone")
            elif moved is None:
                bp.verified = False
                bp.message = f"{followed.reason}; set it again where you want it"
                notes.append(f"breakpoint {bp.id} at {bp.label()} is unverified: {followed.reason}")
            elif moved != bp.line:
                notes.append(f"breakpoint {bp.id} moved {bp.label()} -> {file}:{moved}")
                bp.line = moved
        self.save()
        return notes
