"""HTTP routes of the debugger: the breakpoint set and the console's session commands.

- ``GET|PUT /internal/debug/breakpoints/{plugin}``: the whole set (PUT replaces it);
  ``POST`` adds one, ``DELETE`` removes one (``?id=N``) or all.
- ``GET /internal/debug/sessions/{plugin}``: state (paused where, breakpoints, snapshots);
  ``POST .../attach`` and ``.../detach`` mark a client; ``GET .../connection`` attaches
  one for as long as its stream is open (the console: see ``host/debug_connection.py``);
  ``POST .../command`` runs ``continue | next | step | out | stack | locals | eval``.
- ``GET /internal/debug/sessions/{plugin}/ide``: the IDE port and its secret, for
  ``powerx debug vscode`` (never on the status or the dashboard, which a read-only
  cookie can see).

Pauses, snapshots and breakpoint changes are published on the event bus
(``/internal/debug/events``), which is what the console and the dashboard follow. The
open console connections are on ``app.state.held_connections``, by id.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from powerx.debug.breakpoints import parse_specs
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.debug_connection import HeldConnection
from powerx.host.routes import state
from powerx.host.routes.guards import require_debug, require_json

__all__ = ["routes"]


def _plugin(request: Request) -> str:
    """The plugin the path names, once the request has shown the developer credential."""
    require_debug(request)
    return str(request.path_params["plugin"])


def _client_kind(request: Request) -> str:
    return request.headers.get("x-powerx-client", "api")[:40]


async def get_breakpoints(request: Request) -> Response:
    plugin = _plugin(request)
    debugger = state.simulator(request).debugger
    debugger.check(plugin, [])
    breakpoints = debugger.session(plugin).state()["breakpoints"]
    return JSONResponse({"plugin": plugin, "breakpoints": breakpoints})


async def put_breakpoints(request: Request) -> Response:
    plugin = _plugin(request)
    specs = parse_specs(await require_json(request))
    items = await state.simulator(request).debugger.replace(plugin, specs, _client_kind(request))
    return JSONResponse({"plugin": plugin, "breakpoints": [bp.model_dump() for bp in items]})


async def add_breakpoint(request: Request) -> Response:
    plugin = _plugin(request)
    [spec] = parse_specs({"breakpoints": [await require_json(request)]})
    added = await state.simulator(request).debugger.add(plugin, spec, _client_kind(request))
    return JSONResponse(added.model_dump(), status_code=201)


async def delete_breakpoints(request: Request) -> Response:
    plugin = _plugin(request)
    debugger = state.simulator(request).debugger
    debugger.check(plugin, [])  # an unknown plugin is refused before any state changes
    raw = request.query_params.get("id")
    if raw is not None and not (raw.isascii() and raw.isdigit()):
        raise PowerXError(
            ErrorCode.INVALID_ID, f"Breakpoint id {raw!r} is not a number.", "see `list`."
        )
    removed = await debugger.remove(plugin, int(raw) if raw else None, _client_kind(request))
    if raw is not None and not removed:
        raise PowerXError(
            ErrorCode.BREAKPOINT_NOT_FOUND,
            f"{plugin} has no breakpoint {raw}.",
            "see the ids with `list`.",
            status=404,
        )
    return JSONResponse({"removed": removed})


async def session_state(request: Request) -> Response:
    plugin = _plugin(request)
    debugger = state.simulator(request).debugger
    debugger.check(plugin, [])
    return JSONResponse(debugger.session(plugin).state())


async def ide_access(request: Request) -> Response:
    plugin = _plugin(request)
    access = await state.simulator(request).debugger.ide_access(plugin)
    return JSONResponse(access.to_dict(), headers={"cache-control": "no-store"})


async def attach(request: Request) -> Response:
    plugin = _plugin(request)
    debugger = state.simulator(request).debugger
    return JSONResponse(await debugger.attach_client(plugin, _client_kind(request)))


async def connection(request: Request) -> Response:
    plugin = _plugin(request)
    kind = _client_kind(request)
    simulator = state.simulator(request)
    held = state.held_connections(request)
    since = simulator.observer.bus.last_id
    session = await simulator.debugger.attach_client(plugin, kind)

    async def on_close() -> None:
        held.pop(stream.id, None)
        await simulator.debugger.detach_client(plugin, kind)

    stream = HeldConnection(plugin, session, simulator.observer.bus, since, on_close)
    held[stream.id] = stream
    return stream


async def detach(request: Request) -> Response:
    plugin = _plugin(request)
    connection_id = request.query_params.get("connection")
    if connection_id is None:
        await state.simulator(request).debugger.detach_client(plugin, _client_kind(request))
        return JSONResponse({"ok": True})
    stream = state.held_connections(request).get(connection_id)
    if stream is not None and stream.plugin == plugin:
        stream.ending.set()
        await stream.detached.wait()
    return JSONResponse({"ok": True})  # already gone with its connection: detached


async def command(request: Request) -> Response:
    plugin = _plugin(request)
    body = await require_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("command"), str):
        raise PowerXError(
            ErrorCode.INVALID_BODY,
            'A command needs {"command": "continue" | "next" | ...}.',
            'send e.g. {"command": "locals"}.',
        )
    debugger = state.simulator(request).debugger
    debugger.check(plugin, [])
    return JSONResponse(await debugger.session(plugin).command(body["command"], body))


routes = [
    Route("/internal/debug/breakpoints/{plugin}", get_breakpoints, methods=["GET"]),
    Route("/internal/debug/breakpoints/{plugin}", put_breakpoints, methods=["PUT"]),
    Route("/internal/debug/breakpoints/{plugin}", add_breakpoint, methods=["POST"]),
    Route("/internal/debug/breakpoints/{plugin}", delete_breakpoints, methods=["DELETE"]),
    Route("/internal/debug/sessions/{plugin}", session_state, methods=["GET"]),
    Route("/internal/debug/sessions/{plugin}/ide", ide_access, methods=["GET"]),
    Route("/internal/debug/sessions/{plugin}/attach", attach, methods=["POST"]),
    Route("/internal/debug/sessions/{plugin}/connection", connection, methods=["GET"]),
    Route("/internal/debug/sessions/{plugin}/detach", detach, methods=["POST"]),
    Route("/internal/debug/sessions/{plugin}/command", command, methods=["POST"]),
]
