"""Deterministic tar packing: the same files always give the same SHA-256."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from collections.abc import Collection, Iterable
from pathlib import Path

# Folders that are never part of an artefact.
EXCLUDED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".powerx",
        ".px-plugin",  # px-plugin's own build output and caches (`px-plugin dev`)
        "__pycache__",
        "node_modules",
        ".venv",
        "venv",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".idea",
        ".vscode",
    }
)
# .tsbuildinfo: what `tsc --incremental` writes (the type check on each save may run it).
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".tmp", ".tsbuildinfo")
# Files an editor or tool writes beside the one being saved, for a moment or for as long as
# the file is open: vim's swap files (.swp, then .swo, .swx), its write probe "4913" and
# "~" backups, Emacs' ".#" lock links and "#name#" autosaves, JetBrains' safe-write copies,
# `sed -i`'s "sedXXXXXX" temp file, and the "<output>-go-tmp-umask" probe `go build` writes
# beside its output for a moment. None is source; none is a save of its own.
_SCRATCH_SUFFIXES = (
    ".swp",
    ".swo",
    ".swx",
    "~",
    "___jb_tmp___",
    "___jb_old___",
    "-go-tmp-umask",
)
_SCRATCH_NAME = re.compile(r"4913|sed[A-Za-z0-9]{6}|\.#.*|#.*#")


# A plugin's local settings and secrets (host/dev_vars.py) and dotenv files: never packed.
_LOCAL_SECRETS = re.compile(r"\.dev\.vars(\..+)?|\.env(\..+)?")


def is_local_secret(name: str) -> bool:
    return _LOCAL_SECRETS.fullmatch(name) is not None


def is_scratch_file(name: str) -> bool:
    """Whether a file named ``name`` is an editor's or tool's temporary file, not source."""
    return name.endswith(_SCRATCH_SUFFIXES) or _SCRATCH_NAME.fullmatch(name) is not None


def source_files(root: Path) -> list[Path]:
    """Regular files under ``root`` worth packing, relative, sorted; symlinks are skipped."""
    found: list[Path] = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in EXCLUDED_DIRS for part in relative.parts):
            continue
        if path.is_symlink() or not path.is_file() or path.name.endswith(EXCLUDED_SUFFIXES):
            continue
        if is_scratch_file(path.name) or is_local_secret(path.name):
            continue
        found.append(relative)
    return found


def pack(members: Iterable[tuple[str, bytes]], executable: Collection[str] = ()) -> bytes:
    """A tar of ``(archive name, content)`` pairs with fixed metadata, sorted by name;
    the names in ``executable`` keep their executable bit."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, content in sorted(members):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o755 if name in executable else 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
