"""An upload's way to serving: admitted, stored while generation N+1 starts, activated,
and its outcome (served, unchanged, blocked at admission, failed to start) recorded under
one reload id, with the reload's last steps (``reload_finished``, ``reload_failed``)
published on the bus the moment they are known."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.activation import Activation
from powerx.host.reload_records import failed_record, failure_context, served_record
from powerx.manifest import Manifest
from powerx.observe import events
from powerx.observe.observer import new_reload_id, reload_record

if TYPE_CHECKING:
    from powerx.host.simulator import Simulator


async def hot_reload(
    simulator: Simulator,
    data: bytes,
    declared_digest: str | None,
    source_dir: Path | None,
    timings: dict[str, float],
    received: float,
    plugin_hint: str | None = None,
) -> Activation:
    """Admit, store and activate an uploaded artefact; the outcome (served, unchanged,
    blocked at admission, failed to start) is recorded under one reload id."""
    reload_id = new_reload_id()
    manifest: Manifest | None = None
    try:
        manifest = simulator.admit(data, declared_digest, plugin_hint)
        digest = simulator.store.digest_of(data, declared_digest)
        # Written (and fsynced) to disk while the new generation starts; it must be
        # stored before traffic flips to it.
        stored = asyncio.create_task(asyncio.to_thread(simulator.store.put, data, digest))
        slot = simulator.supervisor.slots.get(manifest.id)
        source = source_dir or (
            slot.source_dir if slot else simulator.store.unpack(digest, data, manifest.id)
        )
        try:
            activation = await simulator.activate(
                manifest, digest, source, timings, data=data, stored=stored
            )
            simulator.reload_failures.clear(manifest.id)  # it serves what was saved
        except BaseException as error:
            await asyncio.gather(stored, return_exceptions=True)  # never left running
            code = error.code if isinstance(error, PowerXError) else ErrorCode.INTERNAL_ERROR
            _publish_settled(simulator, events.RELOAD_FAILED, manifest.id, reload_id, code=code)
            raise
        await asyncio.gather(stored, return_exceptions=True)
        # Held requests go now (the gate follows this), before the bookkeeping.
        _publish_settled(
            simulator,
            events.RELOAD_FINISHED,
            manifest.id,
            reload_id,
            status=activation.status,
            generation=activation.generation,
        )
    except PowerXError as error:
        named = error.details.get("plugin")
        plugin = manifest.id if manifest else str(named or plugin_hint or "unknown")
        slot = simulator.supervisor.slots.get(plugin)
        serving = slot.active if slot else None
        error.details.setdefault("reload_id", reload_id)
        if manifest is not None or named or plugin_hint:
            simulator.reload_failures.failed(plugin, error.code, error.message, error.fix)
        await simulator.observer.reload_finished(
            failed_record(
                reload_id,
                plugin,
                manifest,
                error,
                declared_digest,
                serving.number if serving else None,
                received,
                timings,
            ),
            error.message,
            failure_context(error),
        )
        raise
    activation.finish(received)
    activation.reload_id = reload_id
    await simulator.observer.reload_finished(
        served_record(reload_id, manifest, activation, received)
    )
    return activation


def _publish_settled(
    simulator: Simulator, step: str, plugin: str, reload_id: str, **data: object
) -> None:
    """The reload's outcome is known (``reload_finished`` or ``reload_failed``): the
    gate stops holding the plugin's requests, the dev loop's announcement is done."""
    simulator.observer.bus.publish(step, {"plugin": plugin, "reload_id": reload_id, **data})


async def reload_rejected(
    simulator: Simulator, error: PowerXError, plugin_hint: str | None, received: float
) -> None:
    """An upload refused before its archive could be read (too large, empty)."""
    reload_id = new_reload_id()
    error.details.setdefault("reload_id", reload_id)
    if plugin_hint:
        simulator.reload_failures.failed(plugin_hint, error.code, error.message, error.fix)
    await simulator.observer.reload_finished(
        reload_record(reload_id, plugin_hint or "unknown", "blocked", received, reason=error.code),
        error.message,
    )
