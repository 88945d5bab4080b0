"""The simulator's observability surface: telemetry in, metrics, event and log streams
(SSE), alerts, the audit trail, reconciliation and the dashboard.

Readers (the dashboard page in a browser) may authenticate with the dashboard cookie
instead of a bearer token: EventSource cannot send headers. Anything that changes state
still needs the bearer credential.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from powerx.auth import check_bearer
from powerx.config import OBSERVABILITY_FLAG
from powerx.dashboard import dashboard_html
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError, validation_problems
from powerx.host.json_body import read_json
from powerx.host.simulator import Simulator
from powerx.observe.audit import AuditLog, Verification
from powerx.observe.events import GAP, Event
from powerx.observe.logs import LEVELS, LOG_EVENT, matches
from powerx.observe.observer import new_reload_id, reload_record
from powerx.observe.reconcile import reconcile

DASHBOARD_COOKIE = "powerx_dashboard"
HEARTBEAT_S = 15.0
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
_REFUSED_PAGE = """<!doctype html><meta charset="utf-8"><title>PowerX dashboard</title>
<body style="font-family:system-ui;margin:3em;max-width:40em">
<h1>Open the dashboard with its link</h1>
<p>The Hot Reload Dashboard shows plugin logs and the audit trail, so it needs a key.
Open the link that <code>powerx host start</code> printed, or run
<code>powerx host status</code> to print it again.</p></body>"""


class TelemetryReport(BaseModel):
    """What the developer's client reports (``POST /internal/debug/telemetry``)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["reload", "failure", "breakpoint_sync"]
    plugin: str = Field(min_length=1, max_length=200)
    ref: str | None = Field(default=None, max_length=64)
    status: Literal["ok", "unchanged", "failed", "blocked"] | None = None
    version: str | None = Field(default=None, max_length=64)
    latency_ms: float | None = Field(default=None, ge=0, le=3_600_000)
    reason: str | None = Field(default=None, max_length=100)
    message: str | None = Field(default=None, max_length=4000)
    fix: str | None = Field(default=None, max_length=1000)
    phases: dict[str, float] = Field(default_factory=dict)
    set: int | None = Field(default=None, ge=0)
    verified: int | None = Field(default=None, ge=0)
    replay_ms: float | None = Field(default=None, ge=0)


def sse(event: Event | None) -> str:
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


def reader_check(simulator: Simulator) -> Callable[[Request], None]:
    """Bearer credential, or the dashboard cookie (for GETs a browser makes)."""

    def check(request: Request) -> None:
        cookie = request.cookies.get(DASHBOARD_COOKIE, "")
        if cookie and secrets.compare_digest(cookie.encode(), simulator.dashboard_key.encode()):
            return
        check_bearer(request.headers.get("authorization"))

    return check


def observability_routes(
    simulator: Simulator, require_debug: Callable[[Request], None]
) -> list[Route]:
    observer = simulator.observer
    verifier = _CachedVerification(observer.audit_log)

    def require_flag() -> None:
        if not simulator.config.flag(OBSERVABILITY_FLAG):
            raise PowerXError(
                ErrorCode.OBSERVABILITY_DISABLED,
                f"The flag {OBSERVABILITY_FLAG} is off.",
                "set POWERX_FLAG_DEBUG_OBSERVABILITY_V2=1 (or the flag in host_simulator.yaml) "
                "and restart the simulator.",
                status=404,
            )

    check_reader = reader_check(simulator)

    def require_reader(request: Request) -> None:
        require_flag()
        check_reader(request)

    async def metrics(request: Request) -> Response:
        require_flag()
        if not simulator.config.observability.metrics_open:
            check_reader(request)
        return Response(
            observer.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    async def telemetry_in(request: Request) -> Response:
        require_debug(request)
        require_flag()
        try:
            body = await read_json(request)
        except ValueError:
            body = None
        items = body if isinstance(body, list) else [body]
        if not items or len(items) > 100:
            raise PowerXError(
                ErrorCode.INVALID_TELEMETRY, "Send 1 to 100 reports per request.", "batch smaller."
            )
        try:
            reports = [TelemetryReport.model_validate(item) for item in items]
        except ValidationError as exc:
            problems = validation_problems(exc, whole="report")
            raise PowerXError(
                ErrorCode.INVALID_TELEMETRY,
                f"The telemetry report has {len(problems)} problem(s).",
                "see schemas/ for the report's fields.",
                status=422,
                problems=problems,
            ) from None
        accepted: list[dict[str, str | int]] = []
        for report in reports:
            payload = report.model_dump(exclude_none=True)
            client_failure = report.kind == "failure" or (
                report.kind == "reload" and report.ref is None and report.status == "failed"
            )
            if client_failure:
                # The build failed before anything was uploaded: the server saw nothing,
                # so this report is the reload's only record, and what serves is stale.
                reason = report.reason or "build_failed"
                failure = simulator.reload_failed(
                    report.plugin, reason, report.message or reason, report.fix, origin="client"
                )
                reload_id = new_reload_id()
                await observer.reload_finished(
                    reload_record(
                        reload_id,
                        report.plugin,
                        "failed",
                        0.0,
                        version=report.version,
                        generation=failure.serving_generation,
                        reason=reason,
                        phases=report.phases,
                        origin="client",
                        duration_ms=report.latency_ms or 0.0,
                    ),
                    report.message,
                )
                accepted.append({"kind": report.kind, "reload_id": reload_id})
            else:
                report_id = observer.client_report(report.kind, report.plugin, report.ref, payload)
                accepted.append({"kind": report.kind, "report_id": report_id})
        return JSONResponse({"accepted": accepted}, status_code=202)

    async def telemetry_summary(request: Request) -> Response:
        require_reader(request)
        return JSONResponse(await asyncio.to_thread(observer.telemetry.summary))

    async def telemetry_reloads(request: Request) -> Response:
        require_reader(request)
        plugin = request.query_params.get("plugin")
        return JSONResponse(
            {"reloads": [r.to_dict() for r in observer.telemetry.reloads(plugin=plugin)]}
        )

    async def reconcile_route(request: Request) -> Response:
        require_debug(request)
        require_flag()
        try:
            body = await read_json(request)
        except ValueError:
            body = {}
        fix = bool(body.get("fix")) if isinstance(body, dict) else False
        report = await asyncio.to_thread(reconcile, observer.telemetry, observer.audit_log, fix)
        if fix and report.repaired:
            await observer.audit("telemetry.reconcile", None, {"repaired": report.repaired})
        return JSONResponse(report.to_dict())

    async def alerts(request: Request) -> Response:
        require_reader(request)
        return JSONResponse({"alerts": [a.to_dict() for a in observer.alerts.alerts()]})

    async def audit(request: Request) -> Response:
        require_reader(request)
        limit = int_param(request, "limit", 100, 1, 10_000)
        plugin = request.query_params.get("plugin")
        records = await asyncio.to_thread(observer.audit_log.records, plugin, None, 0, limit)
        verification = await verifier.current()
        return JSONResponse(
            {
                "records": [r.to_dict() for r in records],
                "verified": verification.ok,
                "problems": [p.__dict__ for p in verification.problems],
            }
        )

    async def events_stream(request: Request) -> Response:
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
            async for event in observer.bus.stream(last_id, HEARTBEAT_S):
                if wanted(event):
                    yield sse(event)

        return StreamingResponse(frames(), media_type="text/event-stream", headers=SSE_HEADERS)

    async def logs_stream(request: Request) -> Response:
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
        hub = observer.logs

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

    async def dashboard_link(request: Request) -> Response:
        require_debug(request)
        require_flag()
        return JSONResponse({"url": f"{simulator.url}/dashboard?key={simulator.dashboard_key}"})

    async def dashboard(request: Request) -> Response:
        require_flag()
        key = request.query_params.get("key")
        if key is not None:
            if not secrets.compare_digest(key.encode(), simulator.dashboard_key.encode()):
                return HTMLResponse(_REFUSED_PAGE, status_code=401)
            # Trade the key in the URL for a cookie, so it leaves the address bar and history.
            response = RedirectResponse("/dashboard", status_code=303)
            response.set_cookie(
                DASHBOARD_COOKIE,
                simulator.dashboard_key,
                httponly=True,
                samesite="strict",
                path="/",
            )
            return response
        cookie = request.cookies.get(DASHBOARD_COOKIE, "")
        if not cookie or not secrets.compare_digest(
            cookie.encode(), simulator.dashboard_key.encode()
        ):
            return HTMLResponse(_REFUSED_PAGE, status_code=401)
        return HTMLResponse(dashboard_html(), headers={"cache-control": "no-store"})

    return [
        Route("/metrics", metrics),
        Route("/dashboard", dashboard),
        Route("/internal/debug/dashboard-link", dashboard_link),
        Route("/internal/debug/telemetry", telemetry_in, methods=["POST"]),
        Route("/internal/debug/telemetry/summary", telemetry_summary),
        Route("/internal/debug/telemetry/reloads", telemetry_reloads),
        Route("/internal/debug/telemetry/reconcile", reconcile_route, methods=["POST"]),
        Route("/internal/debug/alerts", alerts),
        Route("/internal/debug/audit", audit),
        Route("/internal/debug/events", events_stream),
        Route("/internal/debug/logs", logs_stream),
    ]


class _CachedVerification:
    """Verifying walks the whole chain; the dashboard asks after every audit event, so a
    result younger than ``max_age_s`` is reused (``powerx audit verify`` never caches)."""

    def __init__(self, log: AuditLog, max_age_s: float = 2.0) -> None:
        self.log = log
        self.max_age_s = max_age_s
        self._at = 0.0
        self._result: Verification | None = None

    async def current(self) -> Verification:
        if self._result is None or time.monotonic() - self._at > self.max_age_s:
            self._result = await asyncio.to_thread(self.log.verify)
            self._at = time.monotonic()
        return self._result


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise PowerXError(
            f"invalid_{name}",
            f"{name}={raw!r} is not a whole number from {low} to {high}.",
            f"pass {name} between {low} and {high}.",
        )
    return value
