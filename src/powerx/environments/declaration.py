"""Where a Python plugin declares its dependencies, read without installing anything.

In the order they win: ``pyproject.toml`` with a ``uv.lock`` beside it (installed
exactly as locked), ``requirements.txt`` (with the files it includes by ``-r``/``-c``;
pinned versions are installed as pinned), ``pyproject.toml``'s ``[project]
dependencies``. A plugin with none of them declares nothing (see ``runtimes/isolation.py``
for what it may import then).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError

__all__ = ["DECLARATION_FILES", "Declaration", "find_declaration"]

REQUIREMENTS = "requirements.txt"
PYPROJECT = "pyproject.toml"
UV_LOCK = "uv.lock"
# Saving any of these changes what the plugin runs with.
DECLARATION_FILES = frozenset({REQUIREMENTS, PYPROJECT, UV_LOCK})
_INCLUDE = re.compile(r"^\s*(?:-r|-c|--requirement|--constraint)(?:\s+|=)(\S+)")
_MAX_INCLUDES = 20


@dataclass(frozen=True)
class Declaration:
    """``file``: what the developer edits to add a package (named in every fix);
    ``locked``: installed from ``uv.lock``; ``requirements``: the requirement lines
    (``requirements.txt``'s own text, or pyproject's dependencies one per line);
    ``digest``: what identifies the environment it gives, with the Python."""

    root: Path
    file: str
    locked: bool
    requirements: str
    digest: str

    @property
    def names(self) -> list[str]:
        """The distribution names it lists (for messages; uv reads the real thing)."""
        names = []
        for line in self.requirements.splitlines():
            line = line.split("#", 1)[0].strip()
            match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)", line)
            if match and not line.startswith("-"):
                names.append(match.group(1))
        return names

    def add_fix(self, distribution: str) -> str:
        """How to add ``distribution`` to this declaration."""
        if self.file == PYPROJECT:
            then = " and run `uv lock`" if self.locked else ""
            return (
                f'add "{distribution}" to [project] dependencies in pyproject.toml{then}; '
                "the simulator installs it into the plugin's environment and reloads."
            )
        return (
            f"add {distribution} to requirements.txt; the simulator installs it into the "
            "plugin's environment and reloads."
        )


def _digest(*parts: bytes) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(len(part).to_bytes(8, "big") + part)
    return hasher.hexdigest()


def _invalid(root: Path, file: str, why: str) -> PowerXError:
    return PowerXError(
        ErrorCode.DEPENDENCIES_INVALID,
        f"The plugin's {file} cannot be read: {why}.",
        f"fix {file} and save again; what serves keeps serving.",
        status=422,
        details={"file": file, "plugin_dir": str(root)},
    )


def _requirements_files(root: Path) -> list[bytes]:
    """requirements.txt and what it includes, so an edit of an included file counts too."""
    contents: list[bytes] = []
    pending, seen = [root / REQUIREMENTS], set[Path]()
    while pending and len(seen) < _MAX_INCLUDES:
        path = pending.pop(0)
        if path in seen:
            continue
        seen.add(path)
        try:
            data = path.read_bytes()
        except OSError as error:
            raise _invalid(root, REQUIREMENTS, f"{path.name}: {error.strerror}") from None
        contents.append(path.name.encode() + b"\0" + data)
        for line in data.decode("utf-8", errors="replace").splitlines():
            match = _INCLUDE.match(line)
            if match:
                pending.append((path.parent / match.group(1)).resolve())
    return contents


def _pyproject_dependencies(root: Path) -> list[str] | None:
    try:
        data = tomllib.loads((root / PYPROJECT).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise _invalid(root, PYPROJECT, str(error)) from None
    except tomllib.TOMLDecodeError as error:
        raise _invalid(root, PYPROJECT, f"not valid TOML ({error})") from None
    project = data.get("project")
    if not isinstance(project, dict) or "dependencies" not in project:
        return None  # tool settings only: no declaration
    dependencies = project["dependencies"]
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise _invalid(root, PYPROJECT, "[project] dependencies must be a list of strings")
    return list(dependencies)


def find_declaration(root: Path) -> Declaration | None:
    """The plugin folder's (or run tree's) declaration, or None."""
    has_lock = (root / UV_LOCK).is_file()
    has_pyproject = (root / PYPROJECT).is_file()
    if has_lock and has_pyproject:
        pyproject, lock = (root / PYPROJECT).read_bytes(), (root / UV_LOCK).read_bytes()
        locked = "\n".join(_pyproject_dependencies(root) or [])
        return Declaration(root, PYPROJECT, True, locked, _digest(b"lock", pyproject, lock))
    if (root / REQUIREMENTS).is_file():
        files = _requirements_files(root)
        text = (root / REQUIREMENTS).read_text(encoding="utf-8", errors="replace")
        return Declaration(root, REQUIREMENTS, False, text, _digest(b"requirements", *files))
    if has_pyproject:
        listed = _pyproject_dependencies(root)
        if listed is None:
            return None
        text = "\n".join(listed)
        return Declaration(root, PYPROJECT, False, text, _digest(b"pyproject", text.encode()))
    return None
