"""The simulator's state and services: the artefact store, the supervisor, the gateway."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from powerx import __version__
from powerx.build.artefact import Artefact
from powerx.config import SimulatorConfig
from powerx.errors import PowerXError
from powerx.host.artefacts import ArtefactStore
from powerx.host.gateway import Denial, Gateway
from powerx.host.images import HostImage, get_image
from powerx.host.supervisor import Generation, LogLine, Supervisor


class Simulator:
    def __init__(
        self,
        config: SimulatorConfig,
        state_dir: Path,
        host_url: str,
        on_log: Callable[[LogLine], None] | None = None,
    ) -> None:
        self.config = config
        self.image: HostImage = get_image(config.image)
        self.state_dir = state_dir
        self.url = host_url
        self.started_at = time.time()
        self.store = ArtefactStore(state_dir)
        self.supervisor = Supervisor(host_url, config.tenant, config.plugin_start_timeout_s, on_log)
        self.denials: list[Denial] = []
        self.gateway = Gateway(
            self.image,
            config.permission_policy,
            self.supervisor,
            config.tenant,
            on_denied=self.denials.append,
        )
        self.shutdown_requested = asyncio.Event()

    async def mount(self, artefact: Artefact) -> Generation:
        """Store the artefact, start a generation of it, point the plugin at it."""
        digest = self.store.put(artefact.data, artefact.digest)
        run_dir = self.store.unpack(digest)
        generation = await self.supervisor.mount(
            artefact.manifest, artefact.source_dir, digest, run_dir
        )
        self.store.set_active(artefact.manifest.id, digest)
        return generation

    def serving(self, plugin_id: str) -> Generation:
        slot = self.supervisor.slots.get(plugin_id)
        if slot is None:
            raise PowerXError(
                "plugin_not_found",
                f"No plugin '{plugin_id}' is mounted.",
                f"mounted: {', '.join(self.supervisor.slots) or 'none'}; "
                "mount it with `powerx host start --mock PATH`.",
                status=404,
            )
        gen = slot.active
        if gen is None or gen.state != "running" or gen.port is None:
            state = gen.state if gen else "not started"
            raise PowerXError(
                "plugin_unavailable",
                f"Plugin '{plugin_id}' is not serving ({state}).",
                "see the simulator's output for the plugin's error, fix it and reload.",
                status=503,
            )
        return gen

    def status(self) -> dict[str, Any]:
        plugins = []
        for plugin_id, slot in self.supervisor.slots.items():
            gen = slot.active
            plugins.append(
                {
                    "id": plugin_id,
                    "name": slot.manifest.name,
                    "version": slot.manifest.version,
                    "runtime": slot.manifest.runtime,
                    "source": str(slot.source_dir),
                    "state": gen.state if gen else "stopped",
                    "generation": gen.number if gen else None,
                    "digest": gen.digest if gen else None,
                    "pid": gen.pid if gen else None,
                    "port": gen.port if gen else None,
                    "start_ms": round(gen.start_ms, 1) if gen else None,
                    "exit_code": gen.exit_code if gen else None,
                    "permissions": slot.manifest.permissions,
                    "url": f"{self.url}/plugins/{plugin_id}/",
                }
            )
        return {
            "host": {
                "url": self.url,
                "image": self.image.name,
                "api_version": self.image.api_version,
                "powerx_version": __version__,
                "started_at": self.started_at,
                "tenant": self.config.tenant,
                "flags": self.config.flags,
            },
            "plugins": plugins,
        }

    async def stop(self) -> None:
        await self.supervisor.stop_all()
