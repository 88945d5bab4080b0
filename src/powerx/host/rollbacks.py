"""A rollback: the previous artefact of a plugin (or one named by digest) serves again,
through the same activation as a reload, and is audited and published."""

from __future__ import annotations

from typing import TYPE_CHECKING

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.activation import Activation
from powerx.host.rollback_targets import stored_target
from powerx.observe import events

if TYPE_CHECKING:
    from powerx.host.simulator import Simulator

__all__ = ["rollback"]


async def rollback(simulator: Simulator, plugin_id: str, digest: str | None) -> Activation:
    """Serve the previous artefact (or a named one) again."""
    record = simulator.store.active(plugin_id)
    slot = simulator.supervisor.slots.get(plugin_id)
    if record is None and slot is None:
        raise PowerXError(
            ErrorCode.PLUGIN_NOT_FOUND,
            f"No plugin '{plugin_id}' is known here.",
            "check the id with `powerx host status`.",
            status=404,
        )
    target = stored_target(simulator.store, plugin_id, digest)
    manifest = simulator.admit(simulator.store.read(target), target)
    if manifest.id != plugin_id:
        raise PowerXError(
            ErrorCode.ARTEFACT_MISMATCH,
            f"Artefact {target[:12]} belongs to {manifest.id}, not {plugin_id}.",
            "name an artefact of this plugin.",
            status=409,
        )
    source = slot.source_dir if slot else simulator.store.unpack(target, plugin=plugin_id)
    activation = await simulator.activate(manifest, target, source, force=True)
    simulator.reload_failures.clear(plugin_id)  # it serves what the developer asked for
    simulator.counters["rollbacks"] += 1
    await simulator.observer.audit(
        "rollback",
        plugin_id,
        {
            "digest": target,
            "from": activation.previous_digest,
            "generation": activation.generation,
            "named": digest is not None,
        },
    )
    simulator.observer.bus.publish(
        events.ROLLBACK,
        {"plugin": plugin_id, "digest": target, "generation": activation.generation},
    )
    return activation
