"""Build a plugin folder into a content-addressed artefact (a tar, named by its SHA-256)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from powerx.build.node import node_members
from powerx.build.pack import digest, pack, source_files
from powerx.build.python import python_members
from powerx.manifest import MANIFEST_FILE, Manifest

ARTEFACT_INFO = "artefact.json"


@dataclass(frozen=True)
class Artefact:
    manifest: Manifest
    data: bytes
    digest: str
    source_dir: Path
    build_ms: float = 0.0
    members: tuple[str, ...] = field(default=())


def build_artefact(manifest: Manifest, plugin_dir: Path, build_dir: Path) -> Artefact:
    """Check/compile/bundle the plugin and pack it; raises ``build_failed`` with file and line."""
    started = time.perf_counter()
    root = plugin_dir.resolve()
    if manifest.runtime == "python3.11":
        members, runnable = python_members(manifest, root, source_files(root))
    else:
        members, runnable = node_members(manifest, root, build_dir)
    info = {
        "plugin": manifest.id,
        "version": manifest.version,
        "runtime": manifest.runtime,
        "runnable": runnable,
        "entry_attribute": manifest.entry_attribute,
    }
    members.append((ARTEFACT_INFO, json.dumps(info, sort_keys=True).encode()))
    members.append((MANIFEST_FILE, (root / MANIFEST_FILE).read_bytes()))
    data = pack(members)
    return Artefact(
        manifest=manifest,
        data=data,
        digest=digest(data),
        source_dir=root,
        build_ms=(time.perf_counter() - started) * 1000,
        members=tuple(name for name, _ in members),
    )
