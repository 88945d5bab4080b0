"""Requests to a plugin wait while a reload of that plugin is under way.

A developer who saves and then refreshes wants the code they saved, not the generation
that is about to be replaced. So from the moment the dev loop says a reload is coming (it
saw the save and builds) or an upload arrives, until the reload has settled (the new
generation serves, or the reload failed and the old one keeps serving), a request to that
plugin waits at the gate and then goes to whatever serves. `wrangler dev` does the same:
its proxy buffers requests from the start of a rebuild until the worker has reloaded.

A wait is bounded by ``max_hold_s`` (``tuning.reload_max_hold_s`` in the config): a start
that hangs (a blocking import, a debugger pause) must not hang the developer's browser
too; after that the previous generation answers.

The gate follows the reload's steps on the event bus (:meth:`ReloadGate.follow`): a
reload pending holds, a flip lets the held requests go, a reload finished or failed ends
the hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

from powerx.config import Tuning
from powerx.observe import events
from powerx.observe.events import Event, EventBus


class ReloadGate:
    def __init__(self, max_hold_s: float = Tuning().reload_max_hold_s) -> None:
        self.max_hold_s = max_hold_s
        self._reloads: dict[str, int] = {}
        self._settled: dict[str, asyncio.Event] = {}
        self._expected: dict[str, asyncio.TimerHandle] = {}
        self._waiting: dict[str, int] = {}  # requests held at the gate, per plugin

    def follow(self, bus: EventBus) -> None:
        """Hold and release as the reload's steps are published on ``bus``."""
        bus.subscribe(events.RELOAD_PENDING, self._on_pending)
        bus.subscribe(events.GENERATION_FLIPPED, self._on_flipped)
        bus.subscribe(events.RELOAD_FINISHED, self._on_settled)
        bus.subscribe(events.RELOAD_FAILED, self._on_settled)

    def _on_pending(self, event: Event) -> None:
        plugin = str(event.data["plugin"])
        if event.data["pending"]:
            self.expect(plugin)
        else:
            self.settle(plugin)

    def _on_flipped(self, event: Event) -> None:
        # A restart after a crash is not the reload the requests wait for.
        if not event.data.get("after_crash"):
            self.flipped(str(event.data["plugin"]))

    def _on_settled(self, event: Event) -> None:
        self.settle(str(event.data["plugin"]))

    def _hold(self, plugin: str) -> None:
        self._reloads[plugin] = self._reloads.get(plugin, 0) + 1
        self._settled.setdefault(plugin, asyncio.Event())

    def _release(self, plugin: str) -> None:
        self._reloads[plugin] -= 1
        if not self._reloads[plugin]:
            del self._reloads[plugin]
            self.flipped(plugin)

    def flipped(self, plugin: str) -> int:
        """The new generation serves: waiting requests go to it now, and so do new ones
        (what is left of the reload is bookkeeping). A hold taken after this, for the
        next save, holds again. Returns how many requests were waiting."""
        settled = self._settled.pop(plugin, None)
        if settled is None:
            return 0
        settled.set()
        return self._waiting.get(plugin, 0)

    @contextlib.contextmanager
    def reloading(self, plugin: str) -> Iterator[None]:
        """Hold requests to ``plugin`` for as long as the block runs (holds may nest)."""
        self._hold(plugin)
        try:
            yield
        finally:
            self._release(plugin)

    def expect(self, plugin: str) -> None:
        """A reload of ``plugin`` is on its way: hold until ``settle(plugin)`` (the upload
        has been handled, or the build failed) or, if neither comes, ``max_hold_s``."""
        if plugin in self._expected:
            return
        self._hold(plugin)
        loop = asyncio.get_running_loop()
        self._expected[plugin] = loop.call_later(self.max_hold_s, self.settle, plugin)

    def settle(self, plugin: str) -> None:
        """The expected reload of ``plugin`` has been handled (or will not come)."""
        timer = self._expected.pop(plugin, None)
        if timer is not None:
            timer.cancel()
            self._release(plugin)

    def holding(self, plugin: str) -> bool:
        """Whether requests to ``plugin`` wait now (a reload is expected or under way)."""
        return plugin in self._settled

    def held(self, plugin: str) -> int:
        """How many requests to ``plugin`` wait at the gate now."""
        return self._waiting.get(plugin, 0)

    async def passage(self, plugin: str) -> float:
        """Wait until no reload of ``plugin`` is under way (at most ``max_hold_s``);
        returns the milliseconds waited."""
        settled = self._settled.get(plugin)
        if settled is None:
            return 0.0
        started = time.perf_counter()
        self._waiting[plugin] = self._waiting.get(plugin, 0) + 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(settled.wait(), self.max_hold_s)
        finally:
            self._waiting[plugin] -= 1
            if not self._waiting[plugin]:
                del self._waiting[plugin]
        return (time.perf_counter() - started) * 1000
