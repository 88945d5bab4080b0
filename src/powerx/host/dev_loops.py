"""What the dev loop watching a plugin (`powerx dev`, `host start --watch`) last told the
simulator: whether its watcher is armed and over which folders, and which saved files the
reload it announced covers.

Shown in status and published as events, so that a test, a script or the dashboard can
wait for "armed" or "this save is being built" instead of guessing how long that takes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from powerx.observe import events

Publish = Callable[[str, dict[str, Any]], object]


@dataclass
class DevLoopState:
    armed: bool = False
    folders: tuple[str, ...] = ()
    mode: str = ""
    changed: tuple[str, ...] = ()  # the files the announced reload covers


class DevLoops:
    def __init__(self, publish: Publish) -> None:
        self._publish = publish
        self._states: dict[str, DevLoopState] = {}

    def _state(self, plugin: str) -> DevLoopState:
        return self._states.setdefault(plugin, DevLoopState())

    def watching(self, plugin: str, armed: bool, folders: Sequence[str], mode: str) -> None:
        """The dev loop's watcher for ``plugin`` is armed over its root and ``folders``
        (``mode``: how it watches), or stopped watching."""
        state = self._state(plugin)
        state.armed, state.folders, state.mode = armed, tuple(folders), mode
        self._publish(
            events.WATCH,
            {"plugin": plugin, "armed": armed, "folders": list(folders), "mode": mode},
        )

    def announced(self, plugin: str, pending: bool, changed: Sequence[str]) -> None:
        """A reload of ``plugin`` covering ``changed`` is being built, or (``pending``
        false) will not come. The reload's own ``plugin.debug.hot_reload`` event ends it
        when it does come."""
        self._state(plugin).changed = tuple(changed) if pending else ()
        self._publish(
            events.RELOAD_PENDING,
            {"plugin": plugin, "pending": pending, "changed": list(changed)},
        )

    def status(self, plugin: str, pending: bool, held: int) -> dict[str, Any]:
        """The ``watch`` entry of a plugin's status; ``pending`` and ``held`` (requests
        waiting for the reload) come from the reload gate."""
        state = self._states.get(plugin, DevLoopState())
        return {
            "armed": state.armed,
            "folders": list(state.folders),
            "mode": state.mode,
            "reload_pending": pending,
            "changed": list(state.changed) if pending else [],
            "held_requests": held,
        }
