"""Backend plugins: the folder as it is (after the manifest's build command, if it has
one), for the program ``backend.entry`` names."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from powerx.bundling.go import go_build_for, run_go_build
from powerx.bundling.pack import source_files
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.manifest import Manifest

BUILD_TIMEOUT_S = 300.0


def _stamps(root: Path) -> dict[str, tuple[int, int]]:
    stamps: dict[str, tuple[int, int]] = {}
    for relative in source_files(root):
        stat = (root / relative).stat()
        stamps[relative.as_posix()] = (stat.st_mtime_ns, stat.st_size)
    return stamps


def run_build_command(
    manifest: Manifest, root: Path, go_cache: Path | None = None, debug: bool = False
) -> frozenset[str]:
    """``build.command`` in the plugin folder (split like a shell, no shell: `go build -o
    bin/plugin ./cmd/plugin`, `npm run build`); its outputs are then packed with the rest.
    A Go plugin without one gets the default Go build (build/go.py), and a Go build runs
    with its cache in ``go_cache`` (``debug``: built for the debugger). An incremental
    tool (go, tsc, cargo) makes this cheap on a reload. Returns the files it wrote
    (relative): a watcher must not take them for saves, or each build would start the
    next."""
    go = go_build_for(manifest, root)
    if go is not None:
        before = _stamps(root)
        run_go_build(go, root, go_cache or root / ".powerx" / "go-cache", debug)
        return _written_since(before, root)
    if manifest.build is None or not manifest.build.command:
        return frozenset()
    command = manifest.build.command
    before = _stamps(root)
    try:
        completed = subprocess.run(
            shlex.split(command),
            cwd=root,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except (OSError, ValueError, subprocess.TimeoutExpired) as error:
        raise PowerXError(
            ErrorCode.BUILD_FAILED,
            f"Build command `{command}` could not run: {error}",
            "set build.command to a program and its arguments that runs in the plugin folder.",
        ) from None
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout).strip()[-600:]
        raise PowerXError(
            ErrorCode.BUILD_FAILED,
            f"Build command `{command}` failed ({completed.returncode}): {tail}",
            f"run `{command}` in {root} and fix what it reports.",
        )
    return _written_since(before, root)


def _written_since(before: dict[str, tuple[int, int]], root: Path) -> frozenset[str]:
    return frozenset(name for name, stamp in _stamps(root).items() if before.get(name) != stamp)


def program_members(
    manifest: Manifest, root: Path
) -> tuple[list[tuple[str, bytes]], str, frozenset[str]]:
    """Every source file under ``src/`` (the program runs from there; its build command,
    if any, has run), the runnable (the
    command line itself, which the supervisor splits and starts) and the members that are
    executable (a compiled binary, a script with a shebang: they stay runnable)."""
    assert manifest.backend is not None
    files = source_files(root)
    members = [(f"src/{f.as_posix()}", (root / f).read_bytes()) for f in files]
    executable = frozenset(f"src/{f.as_posix()}" for f in files if os.access(root / f, os.X_OK))
    return members, manifest.backend.entry, executable
