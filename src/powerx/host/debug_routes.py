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
(``/internal/debug/events``), which is what the console and the dashboard follow.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from powerx.auth import check_bearer
from powerx.debug.breakpoints import parse_specs
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.debug_connection import HeldConnection
from powerx.host.json_body import read_json
from powerx.host.simulator import Simulator


async def _json_body(request: Request) -> Any:
    try:
        return await read_json(request)
    except ValueError:
        raise PowerXError(
            ErrorCode.INVALID_BODY, "The request body is not JSON.", "send a JSON object."
        ) from None


def debug_routes(simulator: Simulator) -> list[Route]:
    debugger = simulator.debugger
    held: dict[str, HeldConnection] = {}  # open console connections, by id

    def require_debug(request: Request) -> str:
        check_bearer(request.headers.get("authorization"))
        return str(request.path_params["plugin"])

    def client_kind(request: Request) -> str:
        return request.headers.get("x-powerx-client", "api")[:40]

    async def get_breakpoints(request: Request) -> Response:
        plugin = require_debug(request)
        debugger.check(plugin, [])
        state = debugger.session(plugin).state()
        return JSONResponse({"plugin": plugin, "breakpoints": state["breakpoints"]})

    async def put_breakpoints(request: Request) -> Response:
        plugin = require_debug(request)
        specs = parse_specs(await _json_body(request))
        items = await debugger.replace(plugin, specs, client_kind(request))
        return JSONResponse({"plugin": plugin, "breakpoints": [bp.model_dump() for bp in items]})

    async def add_breakpoint(request: Request) -> Response:
        plugin = require_debug(request)
        [spec] = parse_specs({"breakpoints": [await _json_body(request)]})
        added = await debugger.add(plugin, spec, client_kind(request))
        return JSONResponse(added.model_dump(), status_code=201)

    async def delete_breakpoints(request: Request) -> Response:
        plugin = require_debug(request)
        debugger.check(plugin, [])  # an unknown plugin is refused before any state changes
        raw = request.query_params.get("id")
        if raw is not None and not (raw.isascii() and raw.isdigit()):
            raise PowerXError(
                ErrorCode.INVALID_ID, f"Breakpoint id {raw!r} is not a number.", "see `list`."
            )
        removed = await debugger.remove(plugin, int(raw) if raw else None, client_kind(request))
        if raw is not None and not removed:
            raise PowerXError(
                ErrorCode.BREAKPOINT_NOT_FOUND,
                f"{plugin} has no breakpoint {raw}.",
                "see the ids with `list`.",
                status=404,
            )
        return JSONResponse({"removed": removed})

    async def session_state(request: Request) -> Response:
        plugin = require_debug(request)
        debugger.check(plugin, [])
        return JSONResponse(debugger.session(plugin).state())

    async def ide_access(request: Request) -> Response:
        plugin = require_debug(request)
        headers = {"cache-control": "no-store"}
        access = await debugger.ide_access(plugin)
        return JSONResponse(access.to_dict(), headers=headers)

    async def attach(request: Request) -> Response:
        plugin = require_debug(request)
        return JSONResponse(await debugger.attach_client(plugin, client_kind(request)))

    async def connection(request: Request) -> Response:
        plugin = require_debug(request)
        kind = client_kind(request)
        since = simulator.observer.bus.last_id
        state = await debugger.attach_client(plugin, kind)

        async def detach() -> None:
            held.pop(stream.id, None)
            await debugger.detach_client(plugin, kind)

        stream = HeldConnection(plugin, state, simulator.observer.bus, since, detach)
        held[stream.id] = stream
        return stream

    async def detach(request: Request) -> Response:
        plugin = require_debug(request)
        connection = request.query_params.get("connection")
        if connection is None:
            await debugger.detach_client(plugin, client_kind(request))
            return JSONResponse({"ok": True})
        stream = held.get(connection)
        if stream is not None and stream.plugin == plugin:
            stream.ending.set()
            await stream.detached.wait()
        return JSONResponse({"ok": True})  # already gone with its connection: detached

    async def command(request: Request) -> Response:
        plugin = require_debug(request)
        body = await _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("command"), str):
            raise PowerXError(
                ErrorCode.INVALID_BODY,
                'A command needs {"command": "continue" | "next" | ...}.',
                'send e.g. {"command": "locals"}.',
            )
        debugger.check(plugin, [])
        result = await debugger.session(plugin).command(body["command"], body)
        return JSONResponse(result)

    return [
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
