"""The harness's side of the containment attempts (``plugins/*/containment.*``): each
answers evidence of what it reached, checked here against what the harness sees itself,
so the verdict does not rest on the plugin's word.

Evidence kinds: ``network`` (the victim servers decide, in ``attacks.py``); ``file``
(the harness reads the same bytes at the path); ``tree`` (a path is the other plugin's
run tree under this simulator's run root); ``written`` (the marker file is there: then it
is removed); ``signalled`` and ``visible`` (the pid and command line of the other
plugin's generation, or of the simulator, are among those the plugin names).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Facts:
    """What the harness knows of the run, to check evidence against."""

    run_root: Path  # where the simulator unpacks run trees
    simulator_pid: int
    plugin_pids: dict[str, int]  # plugin id -> the pid of its serving generation


def command_line(pid: int) -> str:
    """``/proc/<pid>/cmdline`` as the attack plugins report it."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:120]


def tree_owner(path: Path, run_root: Path) -> str | None:
    """The plugin whose run tree under ``run_root`` holds ``path`` (None: no such tree)."""
    path, root = path.resolve(), run_root.resolve()
    if not path.is_relative_to(root):
        return None
    for folder in (path, *path.parents):
        if folder == root:
            return None
        with contextlib.suppress(OSError, ValueError):
            return str(json.loads((folder / "artefact.json").read_text())["plugin"])
    return None


@dataclass(frozen=True)
class Case:
    """One attempt's evidence, and who made it."""

    evidence: dict[str, Any]
    marker: str
    attacker: str
    other: str
    facts: Facts

    def owner_ok(self, path: Path) -> bool:
        wanted = {"own": self.attacker, "other": self.other}.get(self.evidence.get("owner", ""))
        return wanted is None or tree_owner(path, self.facts.run_root) == wanted


def _file(case: Case) -> str | None:
    path = Path(case.evidence["path"])
    try:
        data = path.read_bytes()
    except OSError:
        return None
    same = hashlib.sha256(data).hexdigest() == case.evidence["sha256"]
    return f"the same {len(data)} bytes at {path}" if same and case.owner_ok(path) else None


def _tree(case: Case) -> str | None:
    for path in map(Path, case.evidence["paths"]):
        if path.is_dir() and tree_owner(path, case.facts.run_root) == case.other:
            return f"{path} is {case.other}'s run tree"
    return None


def _written(case: Case) -> str | None:
    path = Path(case.evidence["path"])
    if not path.name.startswith(".powerx-attack-") or not path.is_file():
        return None
    if path.read_text(errors="replace") != case.marker:
        return None
    where_ok = case.owner_ok(path)
    path.unlink()  # the plugin's marker: nothing else of the run tree changed
    return f"found (and removed) {path}" if where_ok else None


def _processes(case: Case, pids: list[int]) -> str | None:
    named = {(int(pid), str(command)) for pid, command in case.evidence["processes"]}
    for pid in pids:
        if (pid, command_line(pid)) in named:
            return f"named pid {pid} ({command_line(pid)[:60]!r})"
    return None


def _signalled(case: Case) -> str | None:
    return _processes(case, [case.facts.plugin_pids[case.other]])


def _visible(case: Case) -> str | None:
    return _processes(case, [case.facts.simulator_pid, case.facts.plugin_pids[case.other]])


_CHECKS: dict[str, Callable[[Case], str | None]] = {
    "file": _file,
    "tree": _tree,
    "written": _written,
    "signalled": _signalled,
    "visible": _visible,
}


def proof(case: Case) -> str | None:
    """What the harness saw that proves the attempt got through (None: nothing); network
    evidence is the victims' to judge."""
    check = _CHECKS.get(case.evidence.get("kind", ""))
    return check(case) if check else None
