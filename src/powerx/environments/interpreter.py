"""The Python a plugin's environment is built on: the one its manifest's runtime names.

``python3.11`` is the DevKit's own interpreter when that is 3.11 (the plugin's process then
loads the DevKit's runtime, compiled for it, without surprises); else a ``python3.11`` on
``PATH``; else the DevKit's, with a note that says so (shown at every install and by
``powerx doctor``).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Interpreter", "interpreter_for"]


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str  # "3.11.7"
    note: str | None = None  # set when it is not the Python the runtime asked for

    @property
    def prefix(self) -> Path:
        """Its installation folder (what a sandbox needs to run it)."""
        return Path(self.path).resolve().parent.parent


def _own() -> Interpreter:
    base = getattr(sys, "_base_executable", None) or sys.executable
    return Interpreter(base, ".".join(map(str, sys.version_info[:3])))


_ASK = "import sys; print('.'.join(map(str, sys.version_info[:3])), sys.executable)"


def _ask(path: str) -> Interpreter | None:
    """The interpreter behind ``path`` (a pyenv shim is a script: ask the real one)."""
    try:
        result = subprocess.run(
            [path, "-c", _ASK], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    version, _, executable = result.stdout.strip().partition(" ")
    if result.returncode != 0 or not executable:
        return None
    return Interpreter(executable, version)


@functools.cache
def interpreter_for(runtime: str) -> Interpreter:
    """``runtime``: a manifest's ``python3.11`` (or any ``pythonX.Y``)."""
    wanted = runtime.removeprefix("python")
    own = _own()
    if own.version.startswith(wanted + ".") or not wanted:
        return own
    found = shutil.which(f"python{wanted}")
    asked = _ask(found) if found else None
    if asked is not None and asked.version.startswith(wanted + "."):
        return asked
    return Interpreter(
        own.path,
        own.version,
        f"python{wanted} is not installed here, so the plugin runs on Python {own.version} "
        f"(the DevKit's); install python{wanted} to run it on what its manifest names",
    )
