"""The Python runtime each plugin generation starts in: found or built before it starts.

A reload of code only costs reading the declaration (a small file) and a stat of the
environment it names. A changed declaration installs first (its progress is the plugin's
log: "installing 12 packages ..."), then the generation starts in the new environment,
beside the one that serves; a failed install leaves that one serving.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from powerx.environments import EnvironmentStore, find_declaration, interpreter_for
from powerx.environments.bytecode import BytecodeCompiler
from powerx.environments.imports import third_party_imports, toolkit_imports
from powerx.host.launcher import Launcher
from powerx.host.python_runtime import (
    ENVIRONMENTS_INSIDE,
    PythonRuntime,
    devkit_runtime,
    environment_runtime,
)
from powerx.manifest import Manifest

__all__ = ["PluginEnvironments", "dependencies_status"]

# (plugin id, a line of progress)
Report = Callable[[str, str], None]


class PluginEnvironments:
    def __init__(
        self, root: Path, report: Report, contained: bool = False, shared: bool = False
    ) -> None:
        self.store = EnvironmentStore(root)
        self.store.bytecode = BytecodeCompiler()
        self.shared = shared
        self.report = report
        # In sandboxes the environments folder is mounted at a fixed place.
        self.mounted = ENVIRONMENTS_INSIDE if contained else None
        self._current: dict[str, PythonRuntime] = {}  # plugin -> what it last started in
        self._told: set[str] = set()  # plugins told they use the DevKit's toolkit

    def clear(self, in_use: set[str]) -> tuple[int, int]:
        """Remove the environments no live generation runs in and no plugin would start
        in next: (how many, bytes). Not in a folder shared by ``POWERX_ENV_DIR``, where
        another simulator may run from them."""
        if self.shared:
            return 0, 0
        keep = in_use | {runtime.key for runtime in self._current.values()}
        return self.store.remove_except(keep)

    async def close(self) -> None:
        """Stop compiling bytecode for new environments (the simulator stops)."""
        if self.store.bytecode is not None:
            await self.store.bytecode.close()

    def sandbox_mounts(self) -> list[tuple[Path, Path]]:
        """What a sandbox needs to see of them, read-only: (folder, where inside): the
        environments and the interpreter they are built on."""
        self.store.root.mkdir(parents=True, exist_ok=True)
        prefix = interpreter_for("python3.11").prefix
        return [(self.store.root, ENVIRONMENTS_INSIDE), (prefix, prefix)]

    def _tell_toolkit(self, manifest: Manifest, code_root: Path) -> None:
        """Not silently: a plugin without a declaration that imports the toolkit hears
        where it comes from and how to declare it."""
        toolkit = sorted(toolkit_imports(code_root, manifest.entry_file))
        if toolkit:
            listed = " and ".join(toolkit)
            self.report(
                manifest.id,
                f"{manifest.id} declares no dependencies, so {listed} "
                f"{'comes' if len(toolkit) == 1 else 'come'} from the DevKit's "
                f"own copy; add {listed} to a requirements.txt beside the manifest (the real "
                "host installs only what a plugin declares)",
            )

    async def runtime_for(
        self, manifest: Manifest, code_root: Path, timings: dict[str, float]
    ) -> PythonRuntime | None:
        """The runtime of a generation of ``manifest`` whose code is in ``code_root``:
        a Python handler's, or a backend program's environment if it declares one (its
        ``python`` is then the environment's); else None. An install adds
        ``install_ms``."""
        if manifest.runtime != "python3.11" and not manifest.is_backend:
            return None
        declaration = find_declaration(code_root)
        if declaration is None and manifest.is_backend:
            return None
        if declaration is None:
            if manifest.id not in self._told:  # said once, at its first start
                self._told.add(manifest.id)
                self._tell_toolkit(manifest, code_root)
            return devkit_runtime()
        interpreter = interpreter_for("python3.11")
        installed = await self.store.ensure(
            declaration, interpreter, lambda line: self.report(manifest.id, line)
        )
        if installed.installed:
            timings["install_ms"] = installed.install_ms
        environment = installed.environment
        current = self._current.get(manifest.id)
        if current is not None and current.environment == environment:
            return current
        # A new environment for this plugin: its zygote starts with what the code imports.
        warm = (
            []
            if manifest.is_backend
            else third_party_imports(code_root, manifest.entry_file, environment.site_packages)
        )
        runtime = environment_runtime(environment, tuple(warm), self.mounted)
        self._current[manifest.id] = runtime
        return runtime


def dependencies_status(python: PythonRuntime | None, launcher: Launcher) -> dict[str, Any] | None:
    """A Python plugin's own environment, as its serving generation runs in it (for
    ``host status``): what it holds, and what its zygote imports before forking."""
    if python is None or python.environment is None:
        return None
    environment = python.environment
    warm = getattr(launcher, "warm_modules", None)
    return {
        "declared_in": environment.declared_in,
        "environment": str(environment.path),
        "packages": list(environment.packages),
        "python": python.python,
        "note": environment.interpreter_note,
        "warm_modules": sorted(warm(python)) if warm is not None else [],
    }
