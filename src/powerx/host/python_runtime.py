"""How a Python plugin's processes start: on which interpreter, seeing which packages.

A plugin that declares dependencies runs on its environment's interpreter, with the
environment's ``site-packages`` and, after them, the DevKit's folders for the runtime
(a ``-c`` boot adds them, so a package both have is the plugin's copy); the runtime then
seals them away (``runtimes/isolation.py``). A plugin that declares nothing runs on the
DevKit's interpreter and sees ``powerx_plugin`` and the handler toolkit only.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from powerx.environments import SDK, TOOLKIT, PythonEnvironment, runtime_paths
from powerx.runtimes.isolation import ENV as ISOLATION_ENV
from powerx.runtimes.isolation import RUNTIME_PATH_ENV, Isolation

__all__ = ["ENVIRONMENTS_INSIDE", "PythonRuntime", "devkit_runtime", "environment_runtime"]

# Where a sandbox shows the plugins' environments (read-only).
ENVIRONMENTS_INSIDE = Path("/powerx/envs")

# Runs ``python -c BOOT MODULE ARGS...`` as ``python -m MODULE ARGS...`` would, with the
# DevKit's folders appended to sys.path (after the environment's site-packages).
_BOOT = (
    "import os, runpy, sys; "
    f"sys.path.extend(os.environ.pop({RUNTIME_PATH_ENV!r}).split(os.pathsep)); "
    "sys.argv = sys.argv[1:]; "
    "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)"
)


@dataclass(frozen=True)
class PythonRuntime:
    """``key``: the environment's ("" for the DevKit's own interpreter); ``python`` and
    ``venv``: the interpreter and the environment where the plugin's processes see them
    (in a sandbox, the environments are mounted at :data:`ENVIRONMENTS_INSIDE`);
    ``warm``: the third-party modules its zygote imports before it forks a generation."""

    key: str
    python: str
    isolation: Isolation
    environment: PythonEnvironment | None = None
    venv: str = ""
    warm: tuple[str, ...] = field(default=(), compare=False)

    def command(self, module: str, *args: str) -> list[str]:
        """The command line that runs ``module`` (the shim, the zygote) in this runtime."""
        if self.environment is None:
            return [sys.executable, "-X", "frozen_modules=off", "-m", module, *args]
        return [self.python, "-X", "frozen_modules=off", "-c", _BOOT, module, *args]

    def process_env(self) -> dict[str, str]:
        """What a process of the runtime needs in its environment to start and seal."""
        env = {ISOLATION_ENV: self.isolation.to_json()}
        if self.environment is not None:
            env[RUNTIME_PATH_ENV] = os.pathsep.join(self.isolation.runtime)
        return env

    def path_env(self, path: str) -> dict[str, str]:
        """A ``python`` or console script the plugin starts is its environment's."""
        if not self.venv:
            return {}
        bin_dir = os.path.join(self.venv, "bin")
        return {"PATH": os.pathsep.join(p for p in (bin_dir, path) if p), "VIRTUAL_ENV": self.venv}

    def plugin_env(self, path: str) -> dict[str, str]:
        """For a handler's generation: :meth:`path_env`, and what a cold start needs to
        seal (``POWERX_ISOLATION``)."""
        return {**self.process_env(), **self.path_env(path)}


@functools.cache
def devkit_runtime() -> PythonRuntime:
    return PythonRuntime("", sys.executable, Isolation(runtime_paths(), (), SDK | TOOLKIT))


def environment_runtime(
    environment: PythonEnvironment, warm: tuple[str, ...] = (), mounted: Path | None = None
) -> PythonRuntime:
    """``mounted``: where the environments folder is inside the plugin's sandbox (a
    fixed place, so the sandbox shows none of the state folder around it)."""
    venv = environment.path if mounted is None else mounted / environment.key
    site = venv / environment.site_packages.relative_to(environment.path)
    python = venv / environment.python.relative_to(environment.path)
    isolation = Isolation(runtime_paths(), (str(site),), SDK)
    return PythonRuntime(environment.key, str(python), isolation, environment, str(venv), warm)
