"""The record of a hot reload's outcome, as telemetry, the audit trail and the
``plugin.debug.hot_reload`` event keep it: served (or unchanged), failed after admission,
or blocked at it."""

from __future__ import annotations

from typing import Any

from powerx.errors import PowerXError
from powerx.host.activation import Activation
from powerx.manifest import Manifest
from powerx.observe.observer import reload_record
from powerx.observe.telemetry import ReloadRecord

# What of a failure's details the audit row keeps beside the message.
_FAILURE_CONTEXT = frozenset({"plugin_range", "host_api", "image", "file", "line", "kind"})


def served_record(
    reload_id: str, manifest: Manifest, activation: Activation, received: float
) -> ReloadRecord:
    """A reload that serves (or found nothing changed); its time is the activation's."""
    return reload_record(
        reload_id,
        manifest.id,
        activation.status,
        received,
        version=manifest.version,
        digest=activation.digest,
        generation=activation.generation,
        phases={k: v for k, v in activation.timings.items() if k != "total_ms"},
        duration_ms=activation.timings["total_ms"],
    )


def failed_record(
    reload_id: str,
    plugin: str,
    manifest: Manifest | None,
    error: PowerXError,
    declared_digest: str | None,
    serving_generation: int | None,
    received: float,
    timings: dict[str, float],
) -> ReloadRecord:
    """A reload that failed after its manifest was read, or was blocked before (no
    ``manifest``); the generation that still serves is named."""
    return reload_record(
        reload_id,
        plugin,
        "failed" if manifest is not None else "blocked",
        received,
        version=manifest.version if manifest else error.details.get("version"),
        digest=declared_digest,
        generation=serving_generation,
        reason=error.code,
        phases=timings,
    )


def failure_context(error: PowerXError) -> dict[str, Any]:
    """What of ``error``'s details the audit row keeps (version range, file and line)."""
    return {k: v for k, v in error.details.items() if k in _FAILURE_CONTEXT}
