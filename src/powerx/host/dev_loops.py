"""What the dev loop watching a plugin (`powerx dev`, `host start --watch`) last told the
simulator: whether its watcher is armed and over which folders, which saved files the
reload it announced covers, and what its last type check found.

Shown in status and published as events, so that a test, a script or the dashboard can
wait for "armed" or "this save is being built" instead of guessing how long that takes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from powerx.observe import events
from powerx.observe.events import Event, EventBus

Publish = Callable[[str, dict[str, Any]], object]
# A check can list thousands of errors; status and the dashboard carry the first ones.
MAX_TYPE_PROBLEMS_KEPT = 50


@dataclass
class DevLoopState:
    armed: bool = False
    folders: tuple[str, ...] = ()
    mode: str = ""
    pending: bool = False  # a reload was announced and has not been uploaded (nor given up)
    changed: tuple[str, ...] = ()  # the files it covers
    type_check: dict[str, Any] | None = None  # the last type check's report, if any


class DevLoops:
    def __init__(self, publish: Publish) -> None:
        self._publish = publish
        self._states: dict[str, DevLoopState] = {}

    def follow(self, bus: EventBus) -> None:
        """An announced reload is done once one of the plugin's reloads settled."""
        bus.subscribe(events.RELOAD_FINISHED, self._on_settled)
        bus.subscribe(events.RELOAD_FAILED, self._on_settled)

    def _on_settled(self, event: Event) -> None:
        self.settled(str(event.data["plugin"]))

    def _state(self, plugin: str) -> DevLoopState:
        return self._states.setdefault(plugin, DevLoopState())

    def watching(self, plugin: str, armed: bool, folders: Sequence[str], mode: str) -> None:
        """The dev loop's watcher for ``plugin`` is armed over its root and ``folders``
        (``mode``: how it watches), or stopped watching."""
        state = self._state(plugin)
        state.armed, state.folders, state.mode = armed, tuple(folders), mode
        if not armed:  # a loop that stops builds (and checks) nothing more
            state.pending, state.changed, state.type_check = False, (), None
        self._publish(
            events.WATCH,
            {"plugin": plugin, "armed": armed, "folders": list(folders), "mode": mode},
        )

    def announced(self, plugin: str, pending: bool, changed: Sequence[str]) -> None:
        """A reload of ``plugin`` covering ``changed`` is being built, or (``pending``
        false) will not come. The reload's own ``plugin.debug.hot_reload`` event ends it
        when it does come."""
        state = self._state(plugin)
        state.pending, state.changed = pending, tuple(changed) if pending else ()
        self._publish(
            events.RELOAD_PENDING,
            {"plugin": plugin, "pending": pending, "changed": list(changed)},
        )

    def type_checked(self, report: dict[str, Any]) -> None:
        """What the dev loop's type check of ``report["plugin"]`` found
        (``reload/type_checks.py``): shown until the next one, so a clean run clears the
        errors; published as ``plugin.debug.type_check``."""
        problems = list(report.get("problems") or [])
        kept = {**report, "problems": problems[:MAX_TYPE_PROBLEMS_KEPT], "errors": len(problems)}
        self._state(str(report["plugin"])).type_check = kept
        self._publish(events.TYPE_CHECK, kept)

    def settled(self, plugin: str) -> None:
        """An upload of ``plugin`` has been handled: the announced reload has come."""
        state = self._states.get(plugin)
        if state is not None:
            state.pending, state.changed = False, ()

    def status(self, plugin: str, uploading: bool, held: int) -> dict[str, Any]:
        """The ``watch`` entry of a plugin's status. ``uploading`` (the reload gate holds
        the plugin's requests) and ``held`` (how many wait) come from the reload gate: a
        reload is pending from the dev loop's note until its upload has been handled, even
        if it builds for longer than the gate holds requests."""
        state = self._states.get(plugin, DevLoopState())
        return {
            "armed": state.armed,
            "folders": list(state.folders),
            "mode": state.mode,
            "reload_pending": state.pending or uploading,
            "changed": list(state.changed),
            "held_requests": held,
            "type_check": state.type_check,
        }
