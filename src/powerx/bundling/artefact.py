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
    build_ms: float = 0.0  # without the install of its dependencies, if one ran
    install_ms: float = 0.0  # npm's install of a Node plugin's package.json, when it ran
    members: tuple[str, ...] = field(default=())

    def timings(self) -> dict[str, float]:
        """The reload phases this build measured: ``build_ms``, and ``install_ms`` when
        it installed the plugin's dependencies (its own phase: "install 2.3 s" is not a
        slow build)."""
        phases = {"build_ms": self.build_ms}
        if self.install_ms > 0:
            phases["install_ms"] = self.install_ms
        return phases
