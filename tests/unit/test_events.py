"""The event bus: ids, replay after Last-Event-ID, gaps, slow readers, closing."""

from __future__ import annotations

import asyncio

from powerx.observe.events import GAP, Event, EventBus
from powerx.testing import wait_until_async


async def _collect(bus: EventBus, last_id: int | None, count: int) -> list[Event]:
    got: list[Event] = []
    async for event in bus.stream(last_id):
        assert event is not None
        got.append(event)
        if len(got) == count:
            break
    return got


def test_replay_after_last_event_id_then_follow_without_duplicates() -> None:
    async def scenario() -> list[int]:
        bus = EventBus()
        for n in range(5):
            bus.publish("t", {"n": n})
        reader = asyncio.create_task(_collect(bus, 2, 5))
        await asyncio.sleep(0)
        bus.publish("t", {"n": 5})
        bus.publish("t", {"n": 6})
        return [e.id for e in await asyncio.wait_for(reader, 5)]

    assert asyncio.run(scenario()) == [3, 4, 5, 6, 7]


def test_an_id_older_than_the_ring_starts_with_a_gap_event() -> None:
    async def scenario() -> list[str]:
        bus = EventBus(capacity=3)
        for n in range(10):
            bus.publish("t", {"n": n})
        return [e.type for e in await _collect(bus, 1, 4)]

    assert asyncio.run(scenario()) == [GAP, "t", "t", "t"]


def test_heartbeat_yields_none_when_idle_and_close_ends_streams() -> None:
    async def scenario() -> list[object]:
        bus = EventBus()
        seen: list[object] = []

        async def read() -> None:
            async for event in bus.stream(None, heartbeat_s=0.01):
                seen.append(event)

        reader = asyncio.create_task(read())
        # Heartbeats, 10 ms apart.
        await wait_until_async(lambda: len(seen), 5, 0.001, accept=lambda n: n >= 2)
        bus.close()
        await asyncio.wait_for(reader, 5)
        return seen

    seen = asyncio.run(scenario())
    assert seen and all(item is None for item in seen)


def test_a_reader_that_falls_behind_is_cut_off_not_buffered_forever() -> None:
    async def scenario() -> int:
        bus = EventBus(subscriber_capacity=3)
        stream = bus.stream(None)
        first = asyncio.create_task(stream.__anext__())
        await asyncio.sleep(0)
        for n in range(10):
            bus.publish("t", {"n": n})
        await first
        rest = [e async for e in stream]
        return 1 + len(rest)

    assert asyncio.run(scenario()) <= 4
