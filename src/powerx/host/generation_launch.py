"""How a generation's process is launched and found healthy: its launcher (a program that
will not start is the plugin's to fix), Delve for a debugged Go program, and the health
probe (a program's health path; a spare's early probe counts)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from powerx.errors import PowerXError
from powerx.host.generations import Generation
from powerx.host.launcher import LaunchSpec, PluginProcess
from powerx.host.programs import backend_start_failed, delve_port
from powerx.manifest import Manifest

if TYPE_CHECKING:
    from powerx.host.supervisor import Supervisor

__all__ = ["delve_port_for", "launch", "passes_probe", "program_health"]


def delve_port_for(
    supervisor: Supervisor, manifest: Manifest, run_dir: Path, program_port: int
) -> int | None:
    if supervisor.debug is None or not supervisor.debug.wants_debug(manifest.id, manifest.runtime):
        return None
    return delve_port(run_dir, program_port, supervisor.network.sandbox(manifest.id) is not None)


async def launch(supervisor: Supervisor, manifest: Manifest, spec: LaunchSpec) -> PluginProcess:
    try:
        return await supervisor.launcher(manifest.runtime, manifest.id).launch(spec)
    except (OSError, PowerXError) as error:  # a program that is not there, or not runnable
        if not manifest.is_backend:
            raise
        message = error.message if isinstance(error, PowerXError) else str(error)
        raise backend_start_failed(manifest, spec.argv, message) from None


async def program_health(
    supervisor: Supervisor, gen: Generation, manifest: Manifest, port: int
) -> Callable[[], Awaitable[bool]]:
    """The probe of the program's health path, where the simulator reaches ``port``
    (which becomes ``gen.port``): its readiness, then its liveness."""
    assert manifest.backend is not None
    gen.port = await supervisor.network.reachable(gen, port)
    health = f"{supervisor.network.reach({'port': gen.port})}{manifest.backend.health}"

    async def probe() -> bool:
        try:
            response = await supervisor.http.get(health, timeout=supervisor.tuning.probe_timeout_s)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    return probe


async def passes_probe(supervisor: Supervisor, url: str, early: asyncio.Task[bool] | None) -> bool:
    """The health probe. One sent early (to a spare, on the port it serves from,
    before its order) counts if it passed; else the generation is asked again."""
    if early is not None and await early:
        return True
    return await supervisor.network.healthy(url)
