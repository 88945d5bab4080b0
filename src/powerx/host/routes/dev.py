"""PowerX's dev hot-load protocol, spoken as ``px-plugin dev --dev-api <simulator>`` speaks
it (PowerXPlugin ``tools/cli/internal/devapi``; PowerX's own handlers are
``backend/internal/transport/http/admin/dev_hotload``):

- ``POST /internal/dev/plugins/register`` ``{pluginId, version, entryPath, tenant?,
  tenantId?, developerId?, metadata?}``, with the developer credential (``Authorization:
  Bearer`` or ``X-API-Key``, as px-plugin's ``--dev-api-token`` sends it): 201
  ``{sessionId, reloadToken, devUrl, expiresAt, status, logUrl}``.
- ``POST .../reload`` ``{sessionId, bundleHash?, changedFiles?, ...}`` with
  ``Authorization: Bearer <reloadToken>`` and ``X-Reload-Id``: the simulator builds the
  registered folder and serves it (host/dev_reload.py); ``{status, reloadId,
  estimatedTime, message, generation, digest, timings}``. The same ``X-Reload-Id`` again
  gets the first answer again (``X-Reload-Replayed: true``), never a second reload.
- ``GET .../{sessionId}``, ``DELETE .../register/{sessionId}``: the credential or that
  session's reload token. ``GET .../sessions``: the credential.
- ``GET .../stream``: SSE, one ``data: {"type", "sessionId", "payload"}`` per session
  event (SessionStarted, SessionReloaded, SessionTerminated); the credential sees every
  session, a reload token its own.

Mounted at the root and under ``/api`` and ``/api/v1``: px-plugin adds ``/api/v1`` to a
``--dev-api`` URL without a path. Errors are problem+json with a stable code and a fix
(host/routes/dev_wire.py). Endpoints reach the simulator through ``request.app.state``;
the simulator flag gates register and reload.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.dev_reload import reload_from_source
from powerx.host.dev_sessions import ReloadAnswer, check_reload_id
from powerx.host.routes.dev_requests import (
    RegisterBody,
    ReloadBody,
    bearer,
    check_developer,
    check_reload_token,
    check_session_access,
    dev_url,
    protocol_state,
    read_body,
)
from powerx.host.routes.dev_wire import (
    PROBLEM_JSON,
    JSONAnswer,
    envelope,
    problem,
    protocol,
    rfc3339,
    session_view,
    success,
)
from powerx.host.routes.guards import require_simulator_flag
from powerx.host.routes.streams import HEARTBEAT_S, SSE_HEADERS
from powerx.host.simulator import Simulator
from powerx.manifest import load_manifest
from powerx.observe.events import DEV_SESSION, Event

__all__ = ["routes"]

BASE = "/internal/dev/plugins"
PREFIXES = ("", "/api", "/api/v1")
_STATUSES = frozenset({"active", "terminated", "expired"})


def _plugin_folder(simulator: Simulator, body: RegisterBody) -> Path:
    """The folder to build: ``entryPath``, else the folder the plugin is mounted from."""
    if body.entry_path is not None:
        path = Path(body.entry_path)
        if not path.is_absolute() or "\0" in body.entry_path:
            raise PowerXError(
                ErrorCode.DEV_ENTRY_INVALID,
                f"entryPath {body.entry_path[:200]!r} is not an absolute path.",
                "send the plugin folder's absolute path (px-plugin sends its --entry so).",
                status=422,
            )
        return path
    slot = simulator.supervisor.slots.get(body.plugin_id)
    if slot is None:
        raise PowerXError(
            ErrorCode.DEV_ENTRY_INVALID,
            f"{body.plugin_id} is not mounted here, and the request names no entryPath.",
            "send entryPath, the plugin folder's absolute path (px-plugin does).",
            status=422,
        )
    return slot.source_dir


@protocol
async def register(request: Request) -> Response:
    simulator, sessions = protocol_state(request)
    check_developer(request)
    require_simulator_flag(simulator)
    body = await read_body(request, RegisterBody)
    folder = _plugin_folder(simulator, body)
    manifest = load_manifest(folder)  # a missing or invalid manifest: its own code
    if manifest.id != body.plugin_id:
        raise PowerXError(
            ErrorCode.PLUGIN_MISMATCH,
            f"{folder} holds plugin {manifest.id}, not {body.plugin_id[:200]}.",
            "register the id the folder's manifest names, or the folder of that plugin.",
            status=409,
            details={"plugin": body.plugin_id[:200], "manifest_plugin": manifest.id},
        )
    tenant = body.tenant or (str(body.tenant_id) if body.tenant_id else simulator.config.tenant)
    session = sessions.register(
        manifest.id,
        folder.resolve(),
        version=body.version,
        tenant=tenant,
        tenant_id=body.tenant_id,
        developer_id=body.developer_id,
        metadata=body.metadata,
    )
    await simulator.observer.audit(
        "dev.session.start",
        manifest.id,
        {
            "session": session.id,
            "source": str(session.source_dir),
            "expires_at": session.expires_at,
        },
    )
    return success(
        {
            "sessionId": session.id,
            "reloadToken": session.reload_token,
            "devUrl": dev_url(simulator, manifest.id),
            "sandboxEndpoint": dev_url(simulator, manifest.id),
            "logUrl": f"{simulator.url}/internal/debug/logs?plugin={manifest.id}",
            "expiresAt": rfc3339(session.expires_at),
            "status": session.status,
        },
        status=201,
    )


def _changed(body: ReloadBody, root: Path) -> list[str]:
    """The changed files px-plugin names, relative to the plugin folder where they are in it."""
    changed = []
    for item in body.changed_files[:200]:
        path = item if isinstance(item, str) else item.path
        if Path(path).is_absolute() and Path(path).is_relative_to(root):
            path = str(Path(path).relative_to(root))
        changed.append(path[:300])
    return changed


@protocol
async def reload(request: Request) -> Response:
    simulator, sessions = protocol_state(request)
    body = await read_body(request, ReloadBody)
    reload_id = check_reload_id(request.headers.get("x-reload-id"))
    session = sessions.get(body.session_id)
    check_reload_token(request, session, body.reload_token)
    require_simulator_flag(simulator)

    async def run() -> ReloadAnswer:
        try:
            activation, build_ms = await reload_from_source(
                simulator, session, _changed(body, session.source_dir)
            )
        except PowerXError as error:
            # reloadId: the X-Reload-Id; reload_id (if any): the record in the telemetry.
            error.details.update(reloadId=reload_id, sessionId=session.id)
            sessions.reloaded(session, False, None, {"reloadId": reload_id, "error": error.code})
            return ReloadAnswer(error.status, problem(error), PROBLEM_JSON)
        served = activation.status == "ok"
        sessions.reloaded(
            session,
            True,
            build_ms,
            {
                "reloadId": reload_id,
                "generation": activation.generation,
                "digest": activation.digest,
                "durationMs": round(activation.timings.get("total_ms", 0.0), 2),
            },
        )
        payload = {
            "sessionId": session.id,
            "reloadId": reload_id,
            "sequence": body.sequence,
            "status": "success" if served else "unchanged",
            "estimatedTime": round(activation.timings.get("total_ms", 0.0)),
            "message": f"generation {activation.generation} serves {activation.digest[:12]}"
            + ("" if served else " (unchanged)"),
            "generation": activation.generation,
            "digest": activation.digest,
            "previousDigest": activation.previous_digest,
            "timings": {k: round(v, 2) for k, v in activation.timings.items()},
            "telemetryId": activation.reload_id,
        }
        return ReloadAnswer(200, envelope(payload), "application/json")

    answer, replayed = await sessions.answer_once(session, reload_id, run)
    headers = {"x-reload-id": reload_id}
    if replayed:
        headers["x-reload-replayed"] = "true"
    return JSONAnswer(
        answer.body, status_code=answer.status, media_type=answer.media_type, headers=headers
    )


@protocol
async def session_status(request: Request) -> Response:
    simulator, sessions = protocol_state(request)
    session = sessions.get(request.path_params["session_id"])
    check_session_access(request, session)
    return success(session_view(session, dev_url(simulator, session.plugin_id)))


@protocol
async def unregister(request: Request) -> Response:
    simulator, sessions = protocol_state(request)
    session = sessions.get(request.path_params["session_id"])
    check_session_access(request, session)
    note = request.query_params.get("note", "")[:500]
    was_live = session.status == "active"
    sessions.end(session, note)
    if was_live:
        await simulator.observer.audit(
            "dev.session.end", session.plugin_id, {"session": session.id, "note": note}
        )
    return success(
        {
            "sessionId": session.id,
            "note": note,
            "status": session.status,
            "sessionDuration": int((session.ended_at or time.time()) - session.created_at),
        }
    )


@protocol
async def list_sessions(request: Request) -> Response:
    simulator, sessions = protocol_state(request)
    check_developer(request)
    plugin = request.query_params.get("pluginId")
    only = request.query_params.get("sessionId")
    # As PowerX: a comma list; "all" (or none) lists every status, unknown ones are ignored.
    asked = {
        s.strip().lower()
        for value in request.query_params.getlist("status")
        for s in value.split(",")
    }
    statuses = _STATUSES if not asked or asked & {"all", "*"} else asked & _STATUSES
    items = [
        session_view(s, dev_url(simulator, s.plugin_id))
        for s in sessions.all()
        if s.status in statuses
        and (plugin is None or s.plugin_id == plugin)
        and (only is None or s.id == only)
    ]
    return success({"items": items})


def _last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise PowerXError(
            ErrorCode.INVALID_LAST_EVENT_ID,
            f"Last-Event-ID {raw[:40]!r} is not an event id.",
            "send the id of the last event received, or none to start from now.",
        )
    return int(raw)


def _frame(event: Event) -> str:
    data = {k: event.data[k] for k in ("type", "sessionId", "payload")}
    return f"id: {event.id}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@protocol
async def stream(request: Request) -> Response:
    simulator, sessions = protocol_state(request)
    token = bearer(request)
    own = sessions.holding(token) if token is not None else None
    if own is None:
        check_developer(request)
    wanted = own.id if own is not None else request.query_params.get("sessionId")
    bus = simulator.observer.bus
    # Taken now, before the answer starts: whatever happens once the client has the
    # headers reaches it (the bus replays what came between this and its subscription).
    after = _last_event_id(request)
    start = bus.last_id if after is None else after

    async def frames() -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        async for event in bus.stream(start, HEARTBEAT_S):
            if event is None:
                yield ": keep-alive\n\n"
            elif event.type == DEV_SESSION and wanted in {None, event.data["sessionId"]}:
                yield _frame(event)

    return StreamingResponse(frames(), media_type="text/event-stream", headers=SSE_HEADERS)


def _routes() -> list[Route]:
    """The protocol's routes under each prefix PowerX serves it at."""
    found = []
    for prefix in PREFIXES:
        base = prefix + BASE
        found += [
            Route(f"{base}/register", register, methods=["POST"]),
            Route(f"{base}/register/{{session_id}}", unregister, methods=["DELETE"]),
            Route(f"{base}/reload", reload, methods=["POST"]),
            Route(f"{base}/stream", stream, methods=["GET"]),
            Route(f"{base}/sessions", list_sessions, methods=["GET"]),
            Route(f"{base}/sessions/{{session_id}}", session_status, methods=["GET"]),
            Route(f"{base}/sessions/{{session_id}}", unregister, methods=["DELETE"]),
            Route(f"{base}/{{session_id}}", session_status, methods=["GET"]),
        ]
    return found


routes = _routes()
