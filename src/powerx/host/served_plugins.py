"""The debugger's view of the plugins the simulator serves: read from the supervisor's
slots, plus the one request it makes (a fresh generation of what serves). Handed to the
debugger once, instead of one callable per question."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from powerx.bundling.go import go_build_for
from powerx.host.generations import PluginSlot


class ServedPluginsView:
    """Implements ``powerx.debug.debugger.ServedPlugins``."""

    def __init__(
        self, slots: Mapping[str, PluginSlot], restart: Callable[[str], Awaitable[None]]
    ) -> None:
        self._slots = slots
        self._restart = restart

    def runtime_of(self, plugin: str) -> str | None:
        """A backend program built with go is "go" (Delve debugs it); any other plugin
        keeps its runtime."""
        slot = self._slots.get(plugin)
        if slot is None:
            return None
        if slot.manifest.is_backend and go_build_for(slot.manifest, slot.source_dir):
            return "go"
        return slot.manifest.debug_runtime

    def source_dir_of(self, plugin: str) -> Path | None:
        slot = self._slots.get(plugin)
        return slot.source_dir if slot else None

    def code_root(self, plugin: str) -> Path | None:
        slot = self._slots.get(plugin)
        if slot is None or slot.active is None:
            return None
        return slot.active.run_dir / "src"

    async def restart(self, plugin: str) -> None:
        await self._restart(plugin)
