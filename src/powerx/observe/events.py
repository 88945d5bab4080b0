"""The in-process event bus: every debug event gets a sequence id, lands in a ring and
reaches every live subscriber (the SSE stream, the webhook sink).

Resumable: a subscriber that reconnects with the last id it saw gets what it missed, as
long as the ring still holds it (10,000 events by default); an older id gets the whole
ring, starting with a ``stream.gap`` event so the client knows it lost some.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from powerx.observe.masking import mask_known_value

HOT_RELOAD = "plugin.debug.hot_reload"
ALERT = "plugin.debug.alert"
ROLLBACK = "plugin.debug.rollback"
GENERATION = "plugin.debug.generation"
AUDIT = "plugin.debug.audit"
TELEMETRY = "plugin.debug.telemetry"
EGRESS_BLOCKED = "plugin.debug.egress_blocked"
WATCH = "plugin.debug.watch"  # a dev loop's watcher armed, re-planned or stopped
# The reload's named steps, in order. Published synchronously where they happen, so a
# subscriber (the reload gate, the debugger, the run-tree cleanup) acts at that very point
# of the reload, as a callback would, with no queue or await in between.
RELOAD_PENDING = "plugin.debug.reload_pending"  # a dev loop builds a reload (or gave up)
GENERATION_STARTING = "plugin.debug.generation_starting"  # N+1 is about to start
GENERATION_STARTED = "plugin.debug.generation_started"  # N+1 is ready and healthy
GENERATION_FLIPPED = "plugin.debug.generation_flipped"  # traffic moved to N+1
RELOAD_FINISHED = "plugin.debug.reload_finished"  # N+1 serves (or nothing changed)
RELOAD_FAILED = "plugin.debug.reload_failed"  # N keeps serving; the reason is in the data
# Then ``plugin.debug.hot_reload`` carries the reload's whole record (phases, status).
GENERATION_STOPPED = "plugin.debug.generation_stopped"  # a generation's process ended
DEPENDENCIES = "plugin.debug.dependencies"  # a step of installing a plugin's dependencies
TYPE_CHECK = "plugin.debug.type_check"  # a dev loop's type check of a plugin ran
# A tenant's mock data file was applied, refused, reset or seeded (host/mock_data.py)
MOCK_DATA = "plugin.debug.mock_data"
# PowerX's dev hot-load protocol: a session started, reloaded or ended (host/dev_sessions.py)
DEV_SESSION = "plugin.dev.session"
GAP = "stream.gap"


@dataclass(frozen=True)
class Event:
    id: int
    type: str
    ts: float
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "ts": self.ts, "data": self.data}


class Subscription:
    """One reader's queue. A reader that falls ``capacity`` events behind is cut off
    (``lagged``) rather than letting memory grow; it reconnects with Last-Event-ID."""

    def __init__(self, capacity: int) -> None:
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=capacity)
        self.lagged = False

    def offer(self, event: Event | None) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.lagged = True


class EventBus:
    def __init__(self, capacity: int = 10_000, subscriber_capacity: int = 5_000) -> None:
        self._ring: deque[Event] = deque(maxlen=capacity)
        self._ids = itertools.count(1)
        self._subscribers: set[Subscription] = set()
        self._sinks: list[Callable[[Event], None]] = []
        self._handlers: dict[str, list[Callable[[Event], None]]] = {}
        self._subscriber_capacity = subscriber_capacity
        self.closed = False

    @property
    def last_id(self) -> int:
        return self._ring[-1].id if self._ring else 0

    def add_sink(self, sink: Callable[[Event], None]) -> None:
        """A synchronous callback for every event (it must not block)."""
        self._sinks.append(sink)

    def subscribe(self, type: str, handler: Callable[[Event], None]) -> None:
        """Call ``handler`` for every event of ``type``, synchronously inside
        :meth:`publish` and in the order of subscription: the publisher's next line runs
        after it. It must not block; work that waits belongs in a task it starts."""
        self._handlers.setdefault(type, []).append(handler)

    def publish(self, type: str, data: dict[str, Any]) -> Event:
        event = Event(next(self._ids), type, time.time(), mask_known_value(data))
        self._ring.append(event)
        for handler in self._handlers.get(type, ()):
            handler(event)
        for subscription in list(self._subscribers):
            subscription.offer(event)
        for sink in self._sinks:
            sink(event)
        return event

    def since(self, last_id: int) -> list[Event]:
        """Events after ``last_id`` still in the ring, oldest first."""
        return [event for event in self._ring if event.id > last_id]

    def recent(self, type: str | None = None, limit: int = 200) -> list[Event]:
        matching = [e for e in self._ring if type is None or e.type == type]
        return matching[-limit:]

    async def stream(
        self, last_id: int | None = None, heartbeat_s: float | None = None
    ) -> AsyncIterator[Event | None]:
        """Replay from ``last_id`` (None: only new events), then follow until closed.
        With ``heartbeat_s``, yields None when nothing happened for that long (an SSE
        comment keeps proxies and browsers from timing the stream out)."""
        subscription = Subscription(self._subscriber_capacity)
        self._subscribers.add(subscription)
        try:
            if last_id is not None:
                missed = self.since(last_id)
                if self._ring and last_id < self._ring[0].id - 1:
                    yield Event(0, GAP, time.time(), {"after": last_id, "resumed_at": missed[0].id})
                for event in missed:
                    yield event
                replayed = missed[-1].id if missed else last_id
            else:
                replayed = self.last_id
            while not self.closed and not subscription.lagged:
                try:
                    item: Event | None = await asyncio.wait_for(
                        subscription.queue.get(), heartbeat_s
                    )
                except TimeoutError:
                    yield None
                    continue
                if item is None:
                    break
                if item.id > replayed:
                    yield item
        finally:
            self._subscribers.discard(subscription)

    def close(self) -> None:
        """End every stream (the server is stopping: open SSE responses must finish)."""
        self.closed = True
        for subscription in list(self._subscribers):
            subscription.offer(None)
