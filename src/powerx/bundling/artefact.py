"""A built plugin: a content-addressed artefact (a tar, named by its SHA-256)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from powerx.manifest import Manifest

ARTEFACT_INFO = "artefact.json"


@dataclass(frozen=True)
class Artefact:
    manifest: Manifest
    data: bytes
    digest: str
    source_dir: Path
    build_ms: float = 0.0
    members: tuple[str, ...] = field(default=())
