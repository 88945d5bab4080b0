"""The dev loop's side of the simulator: an uploaded artefact to serve, the notes that hold
requests while a reload is on its way and say the watcher is armed, rollback, and
clearing the artefact cache."""

from __future__ import annotations

import time
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from powerx.auth import check_bearer
from powerx.config import SIMULATOR_FLAG
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.artefacts import MAX_ARCHIVE_BYTES
from powerx.host.json_body import json_or_none, strings
from powerx.host.simulator import Simulator

DIGEST_HEADER = "x-powerx-digest"
BUILD_MS_HEADER = "x-powerx-build-ms"
SOURCE_HEADER = "x-powerx-source"
PLUGIN_HEADER = "x-powerx-plugin"


async def restart(request: Request) -> Response:
    """``POST /internal/debug/plugins/{plugin}/restart``: serve the same artefact again in a
    fresh process (the `r` hotkey of `powerx dev`; `host start` calls it in process)."""
    check_bearer(request.headers.get("authorization"))
    simulator: Simulator = request.app.state.simulator
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


def reload_routes(simulator: Simulator) -> list[Route]:
    def require_debug(request: Request) -> None:
        check_bearer(request.headers.get("authorization"))

    async def read_archive(request: Request) -> bytes:
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

    def require_flag() -> None:
        if not simulator.config.flag(SIMULATOR_FLAG):
            raise PowerXError(
                ErrorCode.SIMULATOR_DISABLED,
                f"The flag {SIMULATOR_FLAG} is off.",
                f"set {SIMULATOR_FLAG}=1 and restart the simulator.",
                status=403,
            )

    async def hot_reload(request: Request) -> Response:
        received = time.perf_counter()
        require_debug(request)
        require_flag()
        plugin_hint = request.headers.get(PLUGIN_HEADER)
        try:
            return await _hot_reload(request, received, plugin_hint)
        finally:
            if plugin_hint:  # refused before its manifest was read: the pending hold ends too
                simulator.gate.settle(plugin_hint)
                simulator.dev_loops.settled(plugin_hint)

    async def _hot_reload(request: Request, received: float, plugin_hint: str | None) -> Response:
        try:
            data = await read_archive(request)
        except PowerXError as error:
            await simulator.reload_rejected(error, plugin_hint, received)
            raise
        timings = {"upload_ms": (time.perf_counter() - received) * 1000}
        build_ms = request.headers.get(BUILD_MS_HEADER, "")
        try:
            timings["build_ms"] = float(build_ms) if build_ms else 0.0
        except ValueError:
            timings["build_ms"] = 0.0
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
        require_debug(request)
        require_flag()
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
        require_debug(request)
        require_flag()
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
                'A watch note needs {"plugin": id, "armed": bool, "folders"?: [name], '
                '"mode"?: str}.',
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
        activation = await simulator.rollback(
            body["plugin"], digest if isinstance(digest, str) else None
        )
        activation.finish(started)
        return JSONResponse(activation.to_dict())

    async def cache_clear(request: Request) -> Response:
        require_debug(request)
        return JSONResponse(await simulator.clear_cache())

    return [
        Route("/internal/debug/hot-reload", hot_reload, methods=["POST"]),
        Route("/internal/debug/hot-reload/pending", reload_pending, methods=["POST"]),
        Route("/internal/debug/hot-reload/watch", watch_armed, methods=["POST"]),
        Route("/internal/debug/rollback", rollback, methods=["POST"]),
        Route("/internal/debug/cache/clear", cache_clear, methods=["POST"]),
        Route("/internal/debug/plugins/{plugin}/restart", restart, methods=["POST"]),
    ]
