"""Old artefacts go after a reload, so a day of saves does not fill the disk (a Go plugin's
artefact holds its binary: megabytes a save). The newest ones stay for `host rollback --to`,
and so does everything that serves, served just before, or is starting."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from powerx.host.artefacts import ArtefactStore
from powerx.host.generations import Generation
from powerx.observe import events
from powerx.observe.events import Event, EventBus

log = logging.getLogger(__name__)


class ArtefactPruner:
    def __init__(
        self,
        store: ArtefactStore,
        live: Iterable[Generation],
        starting: Callable[[], Iterable[str]],
        kept: int,
    ) -> None:
        self._store = store
        self._live = live
        self._starting = starting
        self.kept = kept
        self._pruning: asyncio.Future[tuple[int, int]] | None = None

    def follow(self, bus: EventBus) -> None:
        bus.subscribe(events.RELOAD_FINISHED, self._on_reload_finished)

    def _on_reload_finished(self, event: Event) -> None:
        """Off the reload's path: a thread lists and removes, after the held requests went."""
        if self._pruning is not None and not self._pruning.done():
            return  # the one under way sees this reload's artefact too
        with contextlib.suppress(RuntimeError):  # no loop: a synchronous caller prunes itself
            loop = asyncio.get_running_loop()
            self._pruning = loop.run_in_executor(None, self.prune, self.in_use())

    async def settled(self) -> None:
        """Until the prune a reload started (if any) is done: for tests and shutdown."""
        if self._pruning is not None:
            await asyncio.shield(self._pruning)

    def in_use(self) -> set[str]:
        """What must stay whatever its age: live, starting, active and previous artefacts."""
        keep = {generation.digest for generation in self._live}
        keep |= set(self._starting())
        for plugin in self._store.plugins():
            record = self._store.active(plugin)
            if record is not None:
                keep |= {digest for digest in (record.digest, record.previous) if digest}
        return keep

    def prune(self, keep: set[str]) -> tuple[int, int]:
        """Remove the stored artefacts past the newest ``kept`` that ``keep`` does not
        name, with their unpacked trees; (count, bytes)."""
        stored = self._store.stored_newest_first()
        removed = freed = 0
        for digest, size in stored[self.kept :]:
            if digest in keep:
                continue
            self._store.remove(digest)
            removed += 1
            freed += size
        if removed:
            log.info("removed %d old artefacts (%d bytes)", removed, freed)
        return removed, freed
