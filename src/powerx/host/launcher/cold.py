"""Launchers that start a fresh process per generation: the fallback for a plugin's
shim, and the only way for a backend plugin's own program."""

from __future__ import annotations

from typing import TYPE_CHECKING

from powerx.host.launcher.process import LaunchSpec, PluginProcess, shim_command, spawn

if TYPE_CHECKING:
    from powerx.host.sandbox import Sandbox


class ColdLauncher:
    name = "cold"

    def __init__(self, sandbox: Sandbox | None = None) -> None:
        self.sandbox = sandbox

    def warm(self) -> bool:
        return False

    async def launch(self, spec: LaunchSpec) -> PluginProcess:
        command = shim_command(spec.runtime, spec.argv, spec.python)
        return await spawn(command, spec.env, spec.cwd, self.sandbox)

    async def close(self) -> None:
        return None


class ProgramLauncher(ColdLauncher):
    """Runs a backend plugin's program as it is, a cold start without our shim: nothing
    of ours loads in it, so there is no runtime to keep warm."""

    name = "program"

    async def launch(self, spec: LaunchSpec) -> PluginProcess:
        return await spawn(spec.argv, spec.env, spec.cwd, self.sandbox)
