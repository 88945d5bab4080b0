"""Which generation serves a plugin, or why none does (never started, not mounted,
crashed, in a crash loop): the error a request to it gets."""

from __future__ import annotations

from collections.abc import Mapping

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.generations import Generation, PluginSlot
from powerx.host.reload_failures import ReloadFailures


def serving_generation(
    slots: Mapping[str, PluginSlot], failures: ReloadFailures, plugin_id: str
) -> Generation:
    slot = slots.get(plugin_id)
    if slot is None or slot.active is None:
        failure = failures.last.get(plugin_id)
        if failure is not None:
            raise PowerXError(
                ErrorCode.PLUGIN_UNAVAILABLE,
                f"Plugin '{plugin_id}' is not serving: it never started "
                f"([{failure.code}] {failure.message}).",
                failure.fix or "fix the error and save to reload.",
                status=503,
            )
    if slot is None:
        raise PowerXError(
            ErrorCode.PLUGIN_NOT_FOUND,
            f"No plugin '{plugin_id}' is mounted.",
            f"mounted: {', '.join(slots) or 'none'}; "
            "mount it with `powerx host start --mock PATH`.",
            status=404,
        )
    gen = slot.active
    if gen is None or gen.state != "running" or not gen.url:
        state = "crash loop" if slot.crash_loop else (gen.state if gen else "not started")
        raise PowerXError(
            ErrorCode.PLUGIN_UNAVAILABLE,
            f"Plugin '{plugin_id}' is not serving ({state}).",
            "see the simulator's output for the plugin's error, fix it and save to reload.",
            status=503,
        )
    return gen
