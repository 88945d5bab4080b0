"""Run trees (an artefact unpacked to run from) go once nothing runs or is about to run
from them: in RAM they must not pile up over a day of saves."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable, Iterator

from powerx.host.artefacts import ArtefactStore
from powerx.host.generations import Generation, PluginSlot
from powerx.observe import events
from powerx.observe.events import Event, EventBus


class RunTrees:
    def __init__(
        self,
        store: ArtefactStore,
        live: Iterable[Generation],
        slots: dict[str, PluginSlot],
        bus: EventBus,
    ) -> None:
        self._store = store
        self._live = live
        self._slots = slots
        self._starting: Counter[str] = Counter()  # digests unpacked, not yet serving
        bus.subscribe(events.GENERATION_STOPPED, self._on_stopped)

    @contextlib.contextmanager
    def starting(self, digest: str, plugin: str) -> Iterator[None]:
        """A generation of ``digest`` starts from its tree meanwhile; after, the tree is
        dropped unless it runs from it (or another one does)."""
        self._starting[digest] += 1
        try:
            yield
        finally:
            self._starting[digest] -= 1
            if not self._starting[digest]:
                del self._starting[digest]  # a Counter keeps its zeros: one per reload
            self.drop_unused(digest, plugin)

    def under_way(self) -> dict[str, int]:
        """Starts under way per digest: empty between reloads (no key kept per artefact)."""
        return dict(self._starting)

    def _on_stopped(self, event: Event) -> None:
        self.drop_unused(str(event.data["digest"]), str(event.data["plugin"]))

    def drop_unused(self, digest: str, plugin: str) -> None:
        in_use = (
            self._starting[digest] > 0
            or any(gen.digest == digest for gen in self._live)
            or any(
                slot.active is not None and slot.active.digest == digest
                for slot in self._slots.values()
            )
        )
        if not in_use:
            self._store.remove_run_tree(digest, plugin)
