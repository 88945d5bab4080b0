"""The simulator's event and log streams, as server-sent events.

- ``GET /internal/debug/events[?plugin=ID&type=PREFIX]``: every event on the bus from now
  (or after ``Last-Event-ID``), a gap marker when some were dropped.
- ``GET /internal/debug/logs[?plugin=ID&level=L&tail=N&follow=0]``: the last ``tail``
  plugin log lines, then each new one.

Both need the observability flag and take the developer credential or the dashboard
cookie. ``sse`` and the heartbeat are shared with the request inspector's stream.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.routes import state
from powerx.host.routes.guards import int_param, require_observability_flag, require_reader
from powerx.observe.events import GAP, Event
from powerx.observe.logs import LEVELS, LOG_EVENT, matches

__all__ = ["HEARTBEAT_S", "SSE_HEADERS", "routes", "sse"]

HEARTBEAT_S = 15.0
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def sse(event: Event | None) -> str:
    """One SSE frame; a keep-alive comment for ``None`` (the bus was idle)."""
    if event is None:
        return ": keep-alive\n\n"
    data = json.dumps(event.data, separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n"


def _last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if raw is None:
        return None
    try:
        return max(0, int(raw))
    except ValueError:
        raise PowerXError(
            ErrorCode.INVALID_LAST_EVENT_ID,
            f"Last-Event-ID {raw!r} is not an event id.",
            "send the id of the last event received, or none to start from now.",
        ) from None


async def events_stream(request: Request) -> Response:
    simulator = state.simulator(request)
    require_observability_flag(simulator)
    require_reader(request)
    last_id = _last_event_id(request)
    plugin = request.query_params.get("plugin") or None
    prefix = request.query_params.get("type") or ""

    def wanted(event: Event | None) -> bool:
        if event is None or event.type == GAP:
            return True
        if plugin is not None and event.data.get("plugin") not in {plugin, None}:
            return False
        return event.type.startswith(prefix)

    async def frames() -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        async for event in simulator.observer.bus.stream(last_id, HEARTBEAT_S):
            if wanted(event):
                yield sse(event)

    return StreamingResponse(frames(), media_type="text/event-stream", headers=SSE_HEADERS)


async def logs_stream(request: Request) -> Response:
    require_observability_flag(state.simulator(request))
    require_reader(request)
    plugin = request.query_params.get("plugin") or None
    level = request.query_params.get("level") or None
    if level is not None and level not in LEVELS:
        raise PowerXError(
            ErrorCode.INVALID_LEVEL,
            f"Unknown log level {level!r}.",
            f"use one of: {', '.join(LEVELS)}.",
        )
    tail = int_param(request, "tail", 100, 0, 10_000)
    follow = request.query_params.get("follow", "1") not in {"0", "false", "no"}
    last_id = _last_event_id(request)
    hub = state.simulator(request).observer.logs

    async def frames() -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        if last_id is None:
            backlog = hub.recent(plugin, level, tail) if tail else []
            start = hub.bus.last_id
        else:
            backlog, start = [], last_id
        for old in backlog:
            yield sse(old)
        if not follow:
            return
        async for event in hub.bus.stream(start, HEARTBEAT_S):
            if event is None or (event.type == LOG_EVENT and matches(event, plugin, level)):
                yield sse(event)

    return StreamingResponse(frames(), media_type="text/event-stream", headers=SSE_HEADERS)


routes = [
    Route("/internal/debug/events", events_stream),
    Route("/internal/debug/logs", logs_stream),
]
