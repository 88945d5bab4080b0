"""The hotkeys of `powerx host start` (``cli/hotkeys.py``), acting on the simulator in this
process."""

from __future__ import annotations

from powerx.host.app import AppControls
from powerx.host.simulator import Simulator


class SimulatorActions:
    def __init__(self, simulator: Simulator, controls: AppControls) -> None:
        self.simulator = simulator
        self.controls = controls

    def plugin_ids(self) -> list[str]:
        return list(self.simulator.supervisor.slots)

    async def plugin_urls(self) -> list[str]:
        return [str(plugin["url"]) for plugin in self.simulator.status()["plugins"]]

    async def dashboard_url(self) -> str:
        return f"{self.simulator.url}/dashboard?key={self.controls.dashboard_key}"

    async def restart(self, plugin: str) -> str:
        try:
            await self.simulator.restart_generation(plugin)
        except Exception as error:  # shown, never a traceback in the terminal
            return f"restart of {plugin} failed: {error}"
        slot = self.simulator.supervisor.slots.get(plugin)
        number = slot.active.number if slot is not None and slot.active is not None else "?"
        return f"restarted {plugin}: generation {number}"

    def quit(self) -> None:
        self.controls.shutdown_requested.set()
