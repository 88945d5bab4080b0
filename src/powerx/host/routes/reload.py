"""The dev loop's side of the simulator: an uploaded artefact to serve, the notes that hold
requests while a reload is on its way and say the watcher is armed, rollback, and
clearing the artefact cache.

- ``POST /internal/debug/hot-reload``: the artefact tar as the body (headers
  ``x-powerx-digest``, ``x-powerx-build-ms``, ``x-powerx-source``, ``x-powerx-plugin``).
- ``POST /internal/debug/hot-reload/pending`` ``{"plugin", "pending"?, "changed"?}``.
- ``POST /internal/debug/hot-reload/watch`` ``{"plugin", "armed", "folders"?, "mode"?}``.
- ``POST /internal/debug/rollback`` ``{"plugin", "digest"?}``.
- ``POST /internal/debug/cache/clear``.
- ``POST /internal/debug/plugins/{plugin}/restart``: the same artefact again in a fresh
  process.

All take the developer credential; the upload and the two notes need the simulator
flag.
"""

from __future__ import annotations

import time
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.artefacts import MAX_ARCHIVE_BYTES
from powerx.host.cache_clearing import clear_cache
from powerx.host.routes import state
from powerx.host.routes.guards import (
    json_or_none,
    require_debug,
    require_simulator_flag,
    strings,
)
from powerx.host.simulator import Simulator

__all__ = ["routes"]

DIGEST_HEADER = "x-powerx-digest"
BUILD_MS_HEADER = "x-powerx-build-ms"
# The build's install of the plugin's dependencies (a Node plugin's npm run), if one ran.
INSTALL_MS_HEADER = "x-powerx-install-ms"
SOURCE_HEADER = "x-powerx-source"
PLUGIN_HEADER = "x-powerx-plugin"


def _header_ms(request: Request, name: str) -> float:
    """A duration the client measured (0 when absent or not a number)."""
    try:
        return float(request.headers.get(name) or 0.0)
    except ValueError:
        return 0.0


async def _read_archive(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_ARCHIVE_BYTES:
        raise PowerXError(
            ErrorCode.ARCHIVE_TOO_LARGE,
            f"The archive is {declared} bytes; the cap is {MAX_ARCHIVE_BYTES}.",
            "leave node_modules and build caches out of the plugin folder.",
            status=413,
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_ARCHIVE_BYTES:
            raise PowerXError(
                ErrorCode.ARCHIVE_TOO_LARGE,
                f"The archive exceeds the cap of {MAX_ARCHIVE_BYTES} bytes.",
                "leave node_modules and build caches out of the plugin folder.",
                status=413,
            )
        chunks.append(chunk)
    if not size:
        raise PowerXError(
            ErrorCode.ARCHIVE_MISSING,
            "The request carries no archive.",
            "send the artefact tar as the request body.",
        )
    return b"".join(chunks)


async def hot_reload(request: Request) -> Response:
    received = time.perf_counter()
    simulator = state.simulator(request)
    require_debug(request)
    require_simulator_flag(simulator)
    plugin_hint = request.headers.get(PLUGIN_HEADER)
    try:
        return await _serve_upload(simulator, request, received, plugin_hint)
    finally:
        # Not a duplicate of the gate's and dev loop's bus subscriptions: an upload refused
        # before its manifest is known (archive, admission) publishes no reload step, so the
        # hold its header announced ends here; after the steps of a reload this is a no-op.
        if plugin_hint:
            simulator.gate.settle(plugin_hint)
            simulator.dev_loops.settled(plugin_hint)


async def _serve_upload(
    simulator: Simulator, request: Request, received: float, plugin_hint: str | None
) -> Response:
    try:
        data = await _read_archive(request)
    except PowerXError as error:
        await simulator.reload_rejected(error, plugin_hint, received)
        raise
    timings = {"upload_ms": (time.perf_counter() - received) * 1000}
    timings["build_ms"] = _header_ms(request, BUILD_MS_HEADER)
    install_ms = _header_ms(request, INSTALL_MS_HEADER)
    if install_ms > 0:
        timings["install_ms"] = install_ms
    source = request.headers.get(SOURCE_HEADER)
    activation = await simulator.hot_reload(
        data,
        request.headers.get(DIGEST_HEADER),
        Path(source) if source else None,
        timings,
        received,
        plugin_hint,
    )
    return JSONResponse(activation.to_dict())


async def reload_pending(request: Request) -> Response:
    """The dev loop saw a save and builds: hold the plugin's requests until its upload
    has been handled (or ``{"pending": false}``: the build failed)."""
    simulator = state.simulator(request)
    require_debug(request)
    require_simulator_flag(simulator)
    body = await json_or_none(request)
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("plugin"), str)
        or not isinstance(body.get("pending", True), bool)
        or not strings(body.get("changed", []))
    ):
        raise PowerXError(
            ErrorCode.INVALID_BODY,
            'A pending reload needs {"plugin": id, "pending"?: bool, "changed"?: [path]}.',
            "send the plugin id as JSON.",
        )
    plugin, pending = body["plugin"], body.get("pending", True)
    simulator.note_pending(plugin, pending, body.get("changed", []))
    return JSONResponse({"plugin": plugin, "pending": pending})


async def watch_armed(request: Request) -> Response:
    """The dev loop's watcher for a plugin is armed (or stopped): shown in status and
    as an event, so a test or tool can wait for it."""
    simulator = state.simulator(request)
    require_debug(request)
    require_simulator_flag(simulator)
    body = await json_or_none(request)
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("plugin"), str)
        or not isinstance(body.get("armed"), bool)
        or not strings(body.get("folders", []))
        or not isinstance(body.get("mode", ""), str)
    ):
        raise PowerXError(
            ErrorCode.INVALID_BODY,
            'A watch note needs {"plugin": id, "armed": bool, "folders"?: [name], "mode"?: str}.',
            "send the plugin id and whether its watcher is armed as JSON.",
        )
    simulator.note_watch(
        body["plugin"], body["armed"], body.get("folders", []), body.get("mode", "")
    )
    return JSONResponse({"plugin": body["plugin"], "armed": body["armed"]})


async def rollback(request: Request) -> Response:
    require_debug(request)
    body = await json_or_none(request)
    if not isinstance(body, dict) or not isinstance(body.get("plugin"), str):
        raise PowerXError(
            ErrorCode.INVALID_BODY,
            'Rollback needs {"plugin": id, "digest"?: str}.',
            "send the plugin id as JSON.",
        )
    started = time.perf_counter()
    digest = body.get("digest")
    activation = await state.simulator(request).rollback(
        body["plugin"], digest if isinstance(digest, str) else None
    )
    activation.finish(started)
    return JSONResponse(activation.to_dict())


async def cache_clear(request: Request) -> Response:
    require_debug(request)
    return JSONResponse(await clear_cache(state.simulator(request)))


async def restart(request: Request) -> Response:
    """``POST /internal/debug/plugins/{plugin}/restart``: serve the same artefact again in a
    fresh process (the `r` hotkey of `powerx dev`; `host start` calls it in process)."""
    require_debug(request)
    simulator = state.simulator(request)
    plugin = str(request.path_params["plugin"])
    slot = simulator.supervisor.slots.get(plugin)
    if slot is None or slot.active is None:
        raise PowerXError(
            ErrorCode.PLUGIN_NOT_FOUND,
            f"No plugin '{plugin}' is serving here.",
            "check the id with `powerx host status`.",
            status=404,
        )
    await simulator.restart_generation(plugin)
    active = simulator.supervisor.slots[plugin].active
    return JSONResponse({"plugin": plugin, "generation": active.number if active else None})


routes = [
    Route("/internal/debug/hot-reload", hot_reload, methods=["POST"]),
    Route("/internal/debug/hot-reload/pending", reload_pending, methods=["POST"]),
    Route("/internal/debug/hot-reload/watch", watch_armed, methods=["POST"]),
    Route("/internal/debug/rollback", rollback, methods=["POST"]),
    Route("/internal/debug/cache/clear", cache_clear, methods=["POST"]),
    Route("/internal/debug/plugins/{plugin}/restart", restart, methods=["POST"]),
]
