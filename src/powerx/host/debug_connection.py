"""A debugger client held by its connection: ``GET /internal/debug/sessions/{plugin}/connection``.

The terminal console attaches by opening this stream and stays attached exactly as long as
the stream is open. However the console goes (``quit``, Ctrl-C, a closed terminal tab's
SIGHUP, SIGKILL, an SSH drop), its socket closes, the server sees the disconnect at once,
and the client is detached: a paused request goes on, and no later request waits for a
debugger nobody holds. (A plain ``POST .../attach`` has no connection to watch; it stays
for API scripts that detach themselves.)

The stream carries, as server-sent events, ``attached`` (the session's state and the
connection's id) first, then the plugin's debug events (``plugin.debug.*``: paused,
resumed, snapshot, notice ...). ``POST .../detach?connection=ID`` ends it from the client's
side and answers once the client is detached (the console's ``quit``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from powerx.observe.events import EventBus

HEARTBEAT_S = 15.0  # an SSE comment when idle, so nothing between times the stream out
_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class HeldConnection(Response):
    """A streamed response for a client attached already; it detaches the client when
    the peer goes away (or the stream ends for any other reason)."""

    def __init__(
        self,
        plugin: str,
        state: dict[str, Any],
        bus: EventBus,
        since: int,
        detach: Callable[[], Awaitable[None]],
    ) -> None:
        self.id = secrets.token_hex(8)
        self.plugin = plugin
        self.state = {**state, "connection": self.id}
        self.bus = bus
        self.since = since  # events after the attach; the state covers what came before
        self.detach = detach
        self.ending = asyncio.Event()  # the client asked to leave
        self.detached = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
            waits = [
                asyncio.ensure_future(self._pump(send)),
                asyncio.ensure_future(_disconnected(receive)),
                asyncio.ensure_future(self.ending.wait()),
            ]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in waits:
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
            with contextlib.suppress(OSError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            try:
                await asyncio.shield(self.detach())  # not cancelled with the request
            finally:
                self.detached.set()

    async def _pump(self, send: Send) -> None:
        await send(_frame("attached", self.state))
        async for event in self.bus.stream(self.since, HEARTBEAT_S):
            if event is None:
                await send(_body(": keep-alive\n\n"))
            elif event.type.startswith("plugin.debug.") and event.data.get("plugin") in {
                self.plugin,
                None,
            }:
                data = json.dumps(event.data, separators=(",", ":"))
                await send(_body(f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n"))


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _frame(event: str, data: dict[str, Any]) -> dict[str, Any]:
    return _body(f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n")


def _body(text: str) -> dict[str, Any]:
    return {"type": "http.response.body", "body": text.encode(), "more_body": True}
