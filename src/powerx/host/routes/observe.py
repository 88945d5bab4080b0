"""The simulator's observability surface: telemetry in, metrics, alerts, the audit trail
and reconciliation (the event and log streams are ``streams.py``, the dashboard
``dashboard.py``).

- ``GET /metrics``: Prometheus text (the credential or the dashboard cookie, unless
  ``observability.metrics_open``).
- ``POST /internal/debug/telemetry``: one to a hundred ``TelemetryReport``s from the
  developer's client; a build that failed before any upload is recorded as a failed reload.
- ``GET /internal/debug/telemetry/summary``, ``.../telemetry/reloads[?plugin=ID]``.
- ``POST /internal/debug/telemetry/reconcile`` ``{"fix"?: bool}``.
- ``GET /internal/debug/alerts``, ``GET /internal/debug/audit[?plugin=ID&limit=N]``.

Readers (the dashboard page in a browser) may authenticate with the dashboard cookie
instead of a bearer token: EventSource cannot send headers. Anything that changes state
still needs the bearer credential. Everything here needs the observability flag.
"""

from __future__ import annotations

import asyncio
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError, validation_problems
from powerx.host.routes import state
from powerx.host.routes.guards import (
    int_param,
    read_json,
    require_debug,
    require_observability_flag,
    require_reader,
)
from powerx.host.simulator import Simulator
from powerx.observe.audit import AuditLog, Verification
from powerx.observe.observer import new_reload_id, reload_record
from powerx.observe.reconcile import reconcile

__all__ = ["CachedVerification", "TelemetryReport", "routes"]


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


class CachedVerification:
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


def _simulator_for_reader(request: Request) -> Simulator:
    """The simulator, once the flag is on and the request may read."""
    simulator = state.simulator(request)
    require_observability_flag(simulator)
    require_reader(request)
    return simulator


async def metrics(request: Request) -> Response:
    simulator = state.simulator(request)
    require_observability_flag(simulator)
    if not simulator.config.observability.metrics_open:
        require_reader(request)
    return Response(
        simulator.observer.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )


async def _reports(request: Request) -> list[TelemetryReport]:
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
        return [TelemetryReport.model_validate(item) for item in items]
    except ValidationError as exc:
        problems = validation_problems(exc, whole="report")
        raise PowerXError(
            ErrorCode.INVALID_TELEMETRY,
            f"The telemetry report has {len(problems)} problem(s).",
            "see schemas/ for the report's fields.",
            status=422,
            problems=problems,
        ) from None


async def _record_client_failure(simulator: Simulator, report: TelemetryReport) -> str:
    """The build failed before anything was uploaded: the server saw nothing, so this
    report is the reload's only record, and what serves is stale. Its reload id."""
    reason = report.reason or "build_failed"
    failure = simulator.reload_failures.failed(
        report.plugin, reason, report.message or reason, report.fix, origin="client"
    )
    reload_id = new_reload_id()
    await simulator.observer.reload_finished(
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
    return reload_id


async def telemetry_in(request: Request) -> Response:
    simulator = state.simulator(request)
    require_debug(request)
    require_observability_flag(simulator)
    accepted: list[dict[str, str | int]] = []
    for report in await _reports(request):
        client_failure = report.kind == "failure" or (
            report.kind == "reload" and report.ref is None and report.status == "failed"
        )
        if client_failure:
            reload_id = await _record_client_failure(simulator, report)
            accepted.append({"kind": report.kind, "reload_id": reload_id})
        else:
            payload = report.model_dump(exclude_none=True)
            report_id = simulator.observer.client_report(
                report.kind, report.plugin, report.ref, payload
            )
            accepted.append({"kind": report.kind, "report_id": report_id})
    return JSONResponse({"accepted": accepted}, status_code=202)


async def telemetry_summary(request: Request) -> Response:
    telemetry = _simulator_for_reader(request).observer.telemetry
    return JSONResponse(await asyncio.to_thread(telemetry.summary))


async def telemetry_reloads(request: Request) -> Response:
    telemetry = _simulator_for_reader(request).observer.telemetry
    plugin = request.query_params.get("plugin")
    return JSONResponse({"reloads": [r.to_dict() for r in telemetry.reloads(plugin=plugin)]})


async def reconcile_route(request: Request) -> Response:
    simulator = state.simulator(request)
    require_debug(request)
    require_observability_flag(simulator)
    try:
        body = await read_json(request)
    except ValueError:
        body = {}
    fix = bool(body.get("fix")) if isinstance(body, dict) else False
    observer = simulator.observer
    report = await asyncio.to_thread(reconcile, observer.telemetry, observer.audit_log, fix)
    if fix and report.repaired:
        await observer.audit("telemetry.reconcile", None, {"repaired": report.repaired})
    return JSONResponse(report.to_dict())


async def alerts(request: Request) -> Response:
    observer = _simulator_for_reader(request).observer
    return JSONResponse({"alerts": [a.to_dict() for a in observer.alerts.alerts()]})


async def audit(request: Request) -> Response:
    observer = _simulator_for_reader(request).observer
    limit = int_param(request, "limit", 100, 1, 10_000)
    plugin = request.query_params.get("plugin")
    records = await asyncio.to_thread(observer.audit_log.records, plugin, None, 0, limit)
    verification = await state.audit_verification(request).current()
    return JSONResponse(
        {
            "records": [r.to_dict() for r in records],
            "verified": verification.ok,
            "problems": [p.__dict__ for p in verification.problems],
        }
    )


routes = [
    Route("/metrics", metrics),
    Route("/internal/debug/telemetry", telemetry_in, methods=["POST"]),
    Route("/internal/debug/telemetry/summary", telemetry_summary),
    Route("/internal/debug/telemetry/reloads", telemetry_reloads),
    Route("/internal/debug/telemetry/reconcile", reconcile_route, methods=["POST"]),
    Route("/internal/debug/alerts", alerts),
    Route("/internal/debug/audit", audit),
]
