"""Incremental builds of one plugin folder, for start-up and for every hot reload.

A session re-reads the manifest each time (a manifest edit reloads like code), compiles
only the Python files whose size or mtime changed, and keeps one esbuild worker warm
for Node plugins.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from powerx.bundling.artefact import ARTEFACT_INFO, Artefact
from powerx.bundling.esbuild import EsbuildWorker
from powerx.bundling.go import go_build_for
from powerx.bundling.node import node_members
from powerx.bundling.node_packages import (
    NODE_DECLARATION_FILES,
    STAMP,
    ensure_node_modules,
    find_node_declaration,
)
from powerx.bundling.pack import digest, pack, source_files
from powerx.bundling.program import program_members, run_build_command
from powerx.bundling.python import compile_check
from powerx.manifest import Manifest, find_manifest, load_manifest

# A step of installing a plugin's dependencies ("installing 3 packages ...").
Progress = Callable[[str], None]
STAMP_PATH = f"node_modules/{STAMP}"


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


class BuildSession:
    def __init__(self, plugin_dir: Path, build_dir: Path, progress: Progress | None = None) -> None:
        self.root = plugin_dir.resolve()
        # Hears each step of a Node plugin's dependency install.
        self.progress: Progress = progress or (lambda _line: None)
        self.build_dir = build_dir
        # Go's build cache, shared by the plugins of a project and kept between runs:
        # beside the build folders, in the state folder.
        self.go_cache = build_dir.parent / "go-cache"
        # Set while a debugger is attached: Go plugins are built for it (no optimisation).
        self.debug = False
        self._compiled: dict[Path, tuple[int, int]] = {}
        self._esbuild: EsbuildWorker | None = None
        # (what package.json, its lockfile and the stamp were, the installed digest then)
        self._node_checked: tuple[tuple[tuple[int, int] | None, ...], str | None] | None = None
        # Files a backend plugin's build command wrote (relative): not saves of the developer.
        self.build_outputs: set[str] = set()

    def _python_members(self, manifest: Manifest) -> tuple[list[tuple[str, bytes]], str]:
        files = source_files(self.root)
        changed = []
        for relative in files:
            if relative.suffix != ".py":
                continue
            stat = (self.root / relative).stat()
            if self._compiled.get(relative) != (stat.st_mtime_ns, stat.st_size):
                changed.append(relative)
        compile_check(self.root, changed)
        for relative in changed:
            stat = (self.root / relative).stat()
            self._compiled[relative] = (stat.st_mtime_ns, stat.st_size)
        members = [(f"src/{f.as_posix()}", (self.root / f).read_bytes()) for f in files]
        return members, f"src/{manifest.entry_file}"

    def _node_dependencies(self) -> tuple[str | None, float]:
        """Install the Node plugin's package.json into its node_modules unless current
        (a read of two small files and the stamp): the hash it was installed from, and
        how long an install took (0: none ran)."""
        # Unchanged files since the last build: nothing to read or hash (a lockfile can
        # be megabytes, and this runs on every reload).
        seen = tuple(_stat(self.root / name) for name in (*NODE_DECLARATION_FILES, STAMP_PATH))
        if self._node_checked is not None and self._node_checked[0] == seen:
            return self._node_checked[1], 0.0
        declaration = find_node_declaration(self.root)
        digest, install_ms = None, 0.0
        if declaration is not None:
            installed = ensure_node_modules(declaration, self.progress)
            digest, install_ms = installed.declaration.digest, installed.install_ms
        seen = tuple(_stat(self.root / name) for name in (*NODE_DECLARATION_FILES, STAMP_PATH))
        self._node_checked = (seen, digest)
        return digest, install_ms

    def build(self, manifest: Manifest | None = None) -> Artefact:
        """Build and pack the current state of the folder; ``build_failed`` names file:line."""
        started = time.perf_counter()
        manifest = manifest or load_manifest(self.root)
        executable: frozenset[str] = frozenset()
        dependencies: str | None = None  # a Node plugin's installed package.json, by hash
        install_ms = 0.0  # npm's part of this build: a phase of its own
        externals: list[str] = []  # the packages its bundle require()s from node_modules
        if manifest.is_backend:
            # A program's package.json too (before its build command, which may need it):
            # it runs from the artefact and require()s from the plugin's node_modules.
            dependencies, install_ms = self._node_dependencies()
            self.build_outputs |= run_build_command(manifest, self.root, self.go_cache, self.debug)
            members, runnable, executable = program_members(manifest, self.root)
        elif manifest.runtime == "python3.11":
            members, runnable = self._python_members(manifest)
        else:
            dependencies, install_ms = self._node_dependencies()
            if manifest.needs_esbuild and self._esbuild is None:
                self._esbuild = EsbuildWorker()
            members, runnable, externals = node_members(
                manifest, self.root, self.build_dir, self._esbuild
            )
        info: dict[str, object] = {
            "plugin": manifest.id,
            "version": manifest.version,
            "runtime": manifest.runtime,
            "runnable": runnable,
            "entry_attribute": manifest.entry_attribute,
        }
        if dependencies is not None:
            # The stamp makes an install a new artefact even when the bundle is the same
            # (its dependencies are not in it): the generation it starts loads them.
            info["node_dependencies"] = dependencies
            info["node_externals"] = externals
        if manifest.is_backend and go_build_for(manifest, self.root) is not None:
            info["debugger"] = "dlv"  # a Go program: Delve debugs it
        members.append((ARTEFACT_INFO, json.dumps(info, sort_keys=True).encode()))
        manifest_path = find_manifest(self.root)  # the artefact carries the file the plugin has
        members.append((manifest_path.name, manifest_path.read_bytes()))
        data = pack(members, executable)
        return Artefact(
            manifest=manifest,
            data=data,
            digest=digest(data),
            source_dir=self.root,
            build_ms=(time.perf_counter() - started) * 1000 - install_ms,
            install_ms=install_ms,
            members=tuple(name for name, _ in members),
        )

    def close(self) -> None:
        if self._esbuild is not None:
            self._esbuild.close()
            self._esbuild = None


def build_artefact(
    manifest: Manifest, plugin_dir: Path, build_dir: Path, progress: Progress | None = None
) -> Artefact:
    """Build once: a session without the reuse."""
    session = BuildSession(plugin_dir, build_dir, progress)
    try:
        return session.build(manifest)
    finally:
        session.close()
