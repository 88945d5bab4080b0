"""What each plugin's last failed reload left behind, so nothing stale looks healthy.

A reload that fails (a build error the dev loop reports, an upload the simulator refused,
a generation that would not start) leaves the previous generation serving: the plugin
then serves code older than the code on disk. Until a later reload of the plugin
succeeds, the plugin is ``stale`` (it serves, but not what was saved) or, when nothing
serves it yet, ``failed``; its status says so, and each response it sends carries
``x-powerx-stale``.

A failure names the artefact that served when it happened: once another artefact serves
(a later reload, a rollback), the failure no longer describes what serves. A restart of
the same artefact (after a crash, or to attach a debugger) is still stale.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from powerx.host.generations import PluginSlot

# On a response from a plugin whose last reload failed: "<code>; serving generation <N>".
STALE_HEADER = "x-powerx-stale"


@dataclass(frozen=True)
class ReloadFailure:
    """A reload of ``plugin`` that failed; ``serving_digest`` served when it did (None:
    nothing served, the plugin never mounted)."""

    plugin: str
    code: str
    message: str
    fix: str | None
    origin: Literal["server", "client"]  # handled by the simulator, or reported by the dev loop
    serving_digest: str | None
    serving_generation: int | None
    at: float = field(default_factory=time.time)
    # Precomputed: the request path only looks it up.
    header: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "header", stale_header(self.code, self.serving_generation))

    def describes(self, digest: str | None) -> bool:
        """Does this failure still describe a generation serving ``digest``?"""
        return digest == self.serving_digest

    def header_for(self, generation: int) -> str:
        """The stale header for a response from ``generation`` (of the serving artefact;
        a crash restart gives it a new number)."""
        if generation == self.serving_generation:
            return self.header
        return stale_header(self.code, generation)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "fix": self.fix,
            "origin": self.origin,
            "at": self.at,
            "serving_generation": self.serving_generation,
        }


def stale_header(code: str, generation: int | None) -> str:
    return f"{code}; serving generation {generation}" if generation is not None else code


class ReloadFailures:
    """The last failed reload of each plugin, until a reload of that plugin succeeds."""

    def __init__(self, slots: Mapping[str, PluginSlot]) -> None:
        self.slots = slots  # what serves each plugin, when one of its reloads fails
        self.last: dict[str, ReloadFailure] = {}

    def failed(
        self,
        plugin: str,
        code: str,
        message: str,
        fix: str | None = None,
        origin: Literal["server", "client"] = "server",
    ) -> ReloadFailure:
        """A reload of ``plugin`` failed (here, or in the dev loop before any upload): what
        serves it now is stale, or, if nothing does, the plugin has failed."""
        slot = self.slots.get(plugin)
        serving = slot.active if slot else None
        failure = ReloadFailure(
            plugin,
            code,
            message,
            fix,
            origin,
            serving.digest if serving else None,
            serving.number if serving else None,
        )
        self.record(failure)
        return failure

    def record(self, failure: ReloadFailure) -> None:
        self.last[failure.plugin] = failure

    def clear(self, plugin: str) -> None:
        self.last.pop(plugin, None)

    def affecting(self, plugin: str, digest: str | None) -> ReloadFailure | None:
        """The failure that makes what serves ``plugin`` (``digest``; None: nothing)
        stale, if any."""
        failure = self.last.get(plugin)
        return failure if failure is not None and failure.describes(digest) else None


def plugin_state(generation_state: str | None, crash_loop: bool, failed: bool) -> str:
    """The state a plugin is shown in: ``stale`` when a running generation serves older
    code than the last reload tried to serve, ``failed`` when nothing serves because the
    last attempt failed."""
    if crash_loop:
        return "crash_loop"
    if generation_state is None:
        return "failed" if failed else "stopped"
    if generation_state == "running" and failed:
        return "stale"
    return generation_state
