"""Clearing the artefact cache on request (``POST /internal/debug/cache/clear``): stored
artefacts and plugin environments nothing needs go; what serves, what a rollback would
serve and what a live generation runs from stay."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from powerx.host.simulator import Simulator

__all__ = ["clear_cache"]


async def clear_cache(simulator: Simulator) -> dict[str, int]:
    """Drop stored artefacts nothing needs: keeps every active, previous and live one."""
    keep: set[str] = {gen.digest for gen in simulator.supervisor.live}
    for plugin_id in simulator.store.plugins():
        record = simulator.store.active(plugin_id)
        if record is not None:
            keep.add(record.digest)
            if record.previous:
                keep.add(record.previous)
    removed, freed = simulator.store.clear(keep)
    in_use = {g.python.key for g in simulator.supervisor.live if g.python and g.python.key}
    environments, env_bytes = simulator.environments.clear(in_use)
    details = {"removed": removed, "freed_bytes": freed + env_bytes}
    await simulator.observer.audit("cache.clear", None, {**details, "environments": environments})
    return {**details, "kept": len(keep), "environments": environments}
