"""An optional webhook sink: every debug event is POSTed as JSON to a configured URL, in
order, with bounded retries. It runs beside the simulator and never slows it: a sink
that falls 1,000 events behind drops the oldest and counts them."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

import httpx

from powerx.observe.events import Event

RETRIES = 4
BACKOFF_FIRST_S = 0.2
QUEUE_LIMIT = 1000


class WebhookSink:
    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.url = url
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._queue: deque[Event] = deque()
        self._wake = asyncio.Event()
        self._client = httpx.AsyncClient(timeout=timeout_s, trust_env=False)
        self._task: asyncio.Task[None] | None = None

    def __call__(self, event: Event) -> None:
        if len(self._queue) >= QUEUE_LIMIT:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(event)
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _deliver(self, event: Event) -> bool:
        delay = BACKOFF_FIRST_S
        for attempt in range(RETRIES):
            try:
                response = await self._client.post(
                    self.url,
                    json=event.to_dict(),
                    headers={"x-powerx-event": event.type, "x-powerx-event-id": str(event.id)},
                )
                if response.status_code < 500 and response.status_code != 429:
                    return response.is_success
            except httpx.HTTPError:
                pass
            if attempt < RETRIES - 1:
                await asyncio.sleep(delay)
                delay *= 2
        return False

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                event = self._queue.popleft()
                if await self._deliver(event):
                    self.delivered += 1
                else:
                    self.failed += 1

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._client.aclose()
