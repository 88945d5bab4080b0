"""Backend plugins: the folder as it is, for the program ``backend.entry`` names."""

from __future__ import annotations

import os
from pathlib import Path

from powerx.build.pack import source_files
from powerx.manifest import Manifest


def program_members(
    manifest: Manifest, root: Path
) -> tuple[list[tuple[str, bytes]], str, frozenset[str]]:
    """Every source file under ``src/`` (the program runs from there), the runnable (the
    command line itself, which the supervisor splits and starts) and the members that are
    executable (a compiled binary, a script with a shebang: they stay runnable)."""
    assert manifest.backend is not None
    files = source_files(root)
    members = [(f"src/{f.as_posix()}", (root / f).read_bytes()) for f in files]
    executable = frozenset(f"src/{f.as_posix()}" for f in files if os.access(root / f, os.X_OK))
    return members, manifest.backend.entry, executable
