"""An uploaded artefact's ``artefact.json``: what the build says to run, checked at admission.

The supervisor starts a generation from it (``runnable``, and ``entry_attribute`` for
Python), so an archive whose file is missing, not JSON, of the wrong shape, pointing
outside the archive or written for another plugin is refused before anything is stored
or started: 422 ``artefact_info_invalid``, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from powerx.bundling.artefact import ARTEFACT_INFO
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.artefacts import member_data
from powerx.host.launcher import NodePreload
from powerx.manifest import Manifest

_RUNNABLE_SUFFIXES = {"python3.11": (".py",), "node18": (".js", ".cjs", ".mjs")}


@dataclass(frozen=True)
class ArtefactInfo:
    runnable: str
    entry_attribute: str


def _invalid(problem: str) -> PowerXError:
    return PowerXError(
        ErrorCode.ARTEFACT_INFO_INVALID,
        f"The archive's {ARTEFACT_INFO} {problem}.",
        "push archives built by `powerx dev` or `powerx host start`; they write this file.",
        status=422,
    )


def check_artefact_info(
    data: bytes, members: list[tarfile.TarInfo], manifest: Manifest
) -> ArtefactInfo:
    """What the archive (checked by ``check_archive``, which gave ``members``) runs."""
    raw = member_data(data, members, ARTEFACT_INFO)
    if raw is None:
        raise _invalid("is missing")
    try:
        info = json.loads(raw)
    except (ValueError, RecursionError):
        raise _invalid("is not JSON") from None
    if not isinstance(info, dict):
        raise _invalid("is not a JSON object")
    for key, expected in (
        ("plugin", manifest.id),
        ("runtime", manifest.runtime),
        ("version", manifest.version),
    ):
        if info.get(key, expected) != expected:
            raise _invalid(f"names {key} {str(info.get(key))[:80]!r}, the manifest {expected!r}")
    runnable, attribute = info.get("runnable"), info.get("entry_attribute", "app")
    if not isinstance(runnable, str) or not runnable:
        raise _invalid("has no 'runnable' (a file name)")
    if manifest.is_backend:  # a command line (backend.entry), run from the archive's src/
        return ArtefactInfo(runnable, "app")
    path = PurePosixPath(runnable)
    if path.is_absolute() or ".." in path.parts or "\\" in runnable or "\0" in runnable:
        raise _invalid(f"names runnable {runnable[:80]!r} outside the archive")
    if not any(m.name == runnable and m.isfile() for m in members):
        raise _invalid(f"names runnable {runnable[:80]!r}, which the archive does not hold")
    if not runnable.endswith(_RUNNABLE_SUFFIXES[manifest.runtime]):
        raise _invalid(f"names runnable {runnable[:80]!r}, not a {manifest.runtime} file")
    if manifest.runtime == "python3.11":
        if path.parts[0] != "src":
            raise _invalid(f"names runnable {runnable[:80]!r} outside src/")
        if not isinstance(attribute, str) or not attribute.isidentifier():
            raise _invalid("has an 'entry_attribute' that is not a Python name")
    return ArtefactInfo(runnable, attribute if isinstance(attribute, str) else "app")


def node_preload(run_dir: Path, source_dir: Path) -> NodePreload | None:
    """A Node plugin's installed dependencies, as its build recorded them in the unpacked
    artefact: None when it has no package.json (nothing is require()d from node_modules)."""
    try:
        info = json.loads((run_dir / ARTEFACT_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    installed, externals = info.get("node_dependencies"), info.get("node_externals", [])
    if not isinstance(installed, str) or not isinstance(externals, list):
        return None
    modules = tuple(str(name) for name in externals if isinstance(name, str))
    # Resolved: the sandbox shows the folder a link named node_modules points to.
    return NodePreload(str((source_dir / "node_modules").resolve()), installed, modules)


def link_node_modules(run_dir: Path, source_dir: Path) -> None:
    """A backend program runs from the artefact's ``src/``, which holds no node_modules:
    a link there to the plugin's (installed from its package.json) is what Node's
    require() and import find, walking up from the program's files. Only when the build
    installed one (the artefact records it); an existing link is kept."""
    if node_preload(run_dir, source_dir) is None:
        return
    link = run_dir / "src" / "node_modules"
    with contextlib.suppress(FileExistsError):  # a restart beside it linked it first
        link.symlink_to((source_dir / "node_modules").resolve(), target_is_directory=True)
