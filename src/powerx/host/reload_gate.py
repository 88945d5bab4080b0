"""Requests to a plugin wait while a reload of that plugin is under way.

A developer who saves and then refreshes wants the code they saved, not the generation
that is about to be replaced. So from the moment an upload arrives until the reload has
settled (the new generation serves, or the reload failed and the old one keeps serving),
a request to that plugin waits at the gate and then goes to whatever serves. `wrangler
dev` does the same: its proxy buffers requests while the worker reloads.

A wait is bounded by ``MAX_HOLD_S``: a start that hangs (a blocking import, a debugger
pause) must not hang the developer's browser too; after that the previous generation
answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

# Long enough for a normal start (a Python plugin with heavy imports takes ~1 s), short
# enough that a stuck one is noticed: the request is then served by the old generation.
MAX_HOLD_S = 3.0


class ReloadGate:
    def __init__(self, max_hold_s: float = MAX_HOLD_S) -> None:
        self.max_hold_s = max_hold_s
        self._reloads: dict[str, int] = {}
        self._settled: dict[str, asyncio.Event] = {}

    @contextlib.contextmanager
    def reloading(self, plugin: str) -> Iterator[None]:
        """Hold requests to ``plugin`` for as long as the block runs (blocks may nest)."""
        self._reloads[plugin] = self._reloads.get(plugin, 0) + 1
        self._settled.setdefault(plugin, asyncio.Event()).clear()
        try:
            yield
        finally:
            self._reloads[plugin] -= 1
            if not self._reloads[plugin]:
                del self._reloads[plugin]
                self._settled.pop(plugin).set()

    async def passage(self, plugin: str) -> float:
        """Wait until no reload of ``plugin`` is under way (at most ``max_hold_s``);
        returns the milliseconds waited."""
        settled = self._settled.get(plugin)
        if settled is None:
            return 0.0
        started = time.perf_counter()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(settled.wait(), self.max_hold_s)
        return (time.perf_counter() - started) * 1000
