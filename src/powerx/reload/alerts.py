"""Which of the simulator's alerts the developer at a dev loop is told about.

The simulator raises and clears alerts by its rules (``observe/alerts.py``) for all who
watch its telemetry: the dashboard, the event stream, a webhook. The terminal of a dev
loop shows fewer: an alert about a plugin this loop watches, once, at a reload of that
plugin that failed, and a line when it clears. It does not show alerts that were active
before the loop began (old news), nor one raised by the save that fixed the code: the
failure-rate window still counts the failures the developer has just fixed, so such an
alert is held back and shown only if a later reload fails while it is still active.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from typing import Any, Protocol

from powerx.errors import PowerXError
from powerx.observe.events import ALERT

AlertKey = tuple[str, str]  # (rule name, plugin)


class AlertReporter(Protocol):
    def alert(self, state: str, alert: dict[str, Any]) -> None: ...


class AlertSource(Protocol):
    async def alerts(self) -> list[dict[str, Any]]: ...
    def events(self, kind: str) -> AsyncIterator[dict[str, Any]]: ...


def _key(alert: dict[str, Any]) -> AlertKey:
    return str(alert.get("name")), str(alert.get("plugin"))


class TerminalAlerts:
    """The decision, without I/O: fed the simulator's active alerts, returns the changes
    to print as ``(state, alert)`` pairs, ``state`` being ``raised`` or ``cleared``."""

    def __init__(self, plugins: Collection[str]) -> None:
        self.plugins = set(plugins)
        self._before: set[AlertKey] = set()  # active before the loop began
        self._shown: dict[AlertKey, dict[str, Any]] = {}
        self._failing: set[str] = set()  # watched plugins whose latest reload failed
        # Watched plugins with a reload under way: the simulator may already count it (an
        # alert raised at its flip) before this loop knows how it ended; the check after
        # it ends decides.
        self._reloading: set[str] = set()

    def begin(self, active: list[dict[str, Any]]) -> None:
        """The alerts active as the loop starts: none of them is shown."""
        self._before = {_key(alert) for alert in active}

    def reloading(self, plugin: str) -> None:
        self._reloading.add(plugin)

    def reloaded(self, plugin: str, ok: bool) -> None:
        self._reloading.discard(plugin)
        if ok:
            self._failing.discard(plugin)
        else:
            self._failing.add(plugin)

    def cleared(self, alert: dict[str, Any]) -> dict[str, Any] | None:
        """The simulator cleared ``alert``: the alert to say so of, if it was shown."""
        key = _key(alert)
        self._before.discard(key)
        return self._shown.pop(key, None)

    def update(self, active: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        now = {_key(alert): alert for alert in active}
        # One that was active before and has cleared since is new when it comes back.
        self._before &= now.keys()
        changes: list[tuple[str, dict[str, Any]]] = []
        for key, alert in now.items():
            plugin = key[1]
            if key in self._shown or key in self._before or plugin not in self.plugins:
                continue
            if plugin in self._failing and plugin not in self._reloading:
                self._shown[key] = alert
                changes.append(("raised", alert))
        for key in [k for k in self._shown if k not in now]:
            changes.append(("cleared", self._shown.pop(key)))
        return changes


class AlertWatch:
    """Asks the simulator for its active alerts after each reload and prints what
    :class:`TerminalAlerts` lets through (shared by all plugin loops of one dev loop, so
    each change is printed once). Clears also come as they happen, from the simulator's
    event stream: an alert's window often moves on while no reload runs."""

    def __init__(
        self, client: AlertSource, reporter: AlertReporter, plugins: Collection[str]
    ) -> None:
        self.client = client
        self.reporter = reporter
        self.decision = TerminalAlerts(plugins)
        self._begun = asyncio.Event()

    async def run(self) -> None:
        """Note the alerts already active, then follow clears until cancelled. Started
        beside the loop's first build rather than before it: the watcher arms sooner."""
        try:
            self.decision.begin(await self._active() or [])
        finally:
            self._begun.set()
        await self.follow_clears()

    async def _active(self) -> list[dict[str, Any]] | None:
        try:
            return await self.client.alerts()
        except PowerXError:
            return None  # observability off or host gone: the reload line said enough

    def reloading(self, plugin: str) -> None:
        """Noted as a reload begins (its build)."""
        self.decision.reloading(plugin)

    def reloaded(self, plugin: str, ok: bool) -> None:
        """Noted as the reload ends, so a later check never sees an older outcome."""
        self.decision.reloaded(plugin, ok)

    async def refresh(self) -> None:
        await self._begun.wait()
        active = await self._active()
        if active is None:
            return
        for state, alert in self.decision.update(active):
            self.reporter.alert(state, alert)

    async def follow_clears(self) -> None:
        """Say so when a shown alert clears, until cancelled or the simulator goes away.
        Raised alerts are left to :meth:`refresh`: only after a reload is it known
        whether that reload failed."""
        async for change in self.client.events(ALERT):
            if change.get("state") == "cleared":
                shown = self.decision.cleared(change)
                if shown is not None:
                    self.reporter.alert("cleared", shown)
