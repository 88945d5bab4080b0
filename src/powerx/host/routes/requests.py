"""HTTP routes of the request inspector (``powerx requests``, the dashboard's panel).

- ``GET /internal/debug/requests[?plugin=ID&limit=N&detail=1]``: the last requests to
  plugins, oldest first; with ``detail`` each carries its masked headers, body previews,
  host API calls and log lines.
- ``GET /internal/debug/requests/stream[?plugin=ID&tail=N&detail=1]``: SSE, the last
  ``tail`` requests, then each request as it is answered (event ``request``).
- ``GET /internal/debug/requests/{id}``: one request in detail.
- ``POST /internal/debug/requests/{id}/replay``: send it again, as the same identity,
  and answer what the plugin answered (host/request_replay.py).

They take the developer credential or the dashboard's cookie, as the log stream and a
tool call do; the request guard keeps other sites out (Host, Origin).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.request_replay import replay
from powerx.host.routes import state
from powerx.host.routes.guards import int_param, require_reader
from powerx.host.routes.streams import HEARTBEAT_S, SSE_HEADERS, sse
from powerx.host.simulator import Simulator
from powerx.observe.events import Event
from powerx.observe.request_view import detail, logs_for, summary
from powerx.observe.requests import REQUEST_EVENT, RequestInspector, RequestRecord

__all__ = ["routes"]

_TRUE = {"1", "true", "yes"}
_MOST = 100_000  # the largest request_buffer a config may set


def _find(inspector: RequestInspector, request_id: str) -> RequestRecord:
    record = inspector.get(request_id)
    if record is None:
        raise PowerXError(
            ErrorCode.REQUEST_NOT_FOUND,
            f"No request '{request_id[:100]}' is kept (the inspector keeps the last "
            f"{inspector.capacity}).",
            "list the kept requests with `powerx requests`; raise observability."
            "request_buffer in host_simulator.yaml to keep more.",
            status=404,
        )
    return record


def _details(
    simulator: Simulator, records: list[RequestRecord], log_events: list[Event]
) -> list[dict[str, Any]]:
    inspector = simulator.observer.requests
    lines = logs_for(records, log_events, inspector.run)
    return [detail(r, lines[r.id], inspector.preview_bytes) for r in records]


def _one(simulator: Simulator, record: RequestRecord) -> dict[str, Any]:
    """``record`` in detail; the requests its generation served after it bound the time
    window its log lines are matched in."""
    inspector = simulator.observer.requests
    neighbours = [r for r in inspector.neighbours(record) if r.ts >= record.ts] or [record]
    lines = logs_for(neighbours, simulator.observer.logs.bus.since(0), inspector.run)
    return detail(record, lines.get(record.id, []), inspector.preview_bytes)


async def list_requests(request: Request) -> Response:
    require_reader(request)
    simulator = state.simulator(request)
    inspector = simulator.observer.requests
    plugin = request.query_params.get("plugin") or None
    limit = int_param(request, "limit", 100, 1, _MOST)
    records = inspector.records(plugin, limit)
    if request.query_params.get("detail", "").lower() in _TRUE:
        # Masking a full ring and matching its lines takes some ms: not on the loop
        # that proxies the plugins' requests.
        events = simulator.observer.logs.bus.since(0)
        items = await asyncio.to_thread(_details, simulator, records, events)
    else:
        items = [summary(r) for r in records]
    return JSONResponse(
        {"requests": items, "kept": len(inspector.records()), "capacity": inspector.capacity}
    )


async def stream(request: Request) -> Response:
    require_reader(request)
    simulator = state.simulator(request)
    inspector = simulator.observer.requests
    plugin = request.query_params.get("plugin") or None
    tail = int_param(request, "tail", 0, 0, _MOST)
    full = request.query_params.get("detail", "").lower() in _TRUE

    def shown(record: RequestRecord) -> dict[str, Any]:
        return _one(simulator, record) if full else summary(record)

    async def frames() -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        start = inspector.bus.last_id
        backlog = [r for r in inspector.records(plugin) if r.done][-tail:] if tail else []
        for record in backlog:
            yield sse(Event(0, REQUEST_EVENT, record.ts, shown(record)))
        async for event in inspector.bus.stream(start, HEARTBEAT_S):
            if event is None:
                yield sse(None)
                continue
            if plugin is not None and event.data.get("plugin") != plugin:
                continue
            answered = inspector.get(str(event.data.get("id")))
            if answered is not None:
                yield sse(Event(event.id, REQUEST_EVENT, event.ts, shown(answered)))

    return StreamingResponse(frames(), media_type="text/event-stream", headers=SSE_HEADERS)


async def one(request: Request) -> Response:
    require_reader(request)
    simulator = state.simulator(request)
    record = _find(simulator.observer.requests, request.path_params["request_id"])
    return JSONResponse(_one(simulator, record))


async def replay_one(request: Request) -> Response:
    require_reader(request)
    simulator = state.simulator(request)
    record = _find(simulator.observer.requests, request.path_params["request_id"])
    answer = await replay(request.app, simulator.url, record, simulator.signer.default)
    return JSONResponse(answer)


routes = [
    Route("/internal/debug/requests", list_requests),
    Route("/internal/debug/requests/stream", stream),
    Route("/internal/debug/requests/{request_id}", one),
    Route("/internal/debug/requests/{request_id}/replay", replay_one, methods=["POST"]),
]
