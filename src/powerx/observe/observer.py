"""One place where the simulator reports what happened; it fans out to telemetry,
metrics, the audit chain, the event bus, alerts, logs and OTLP, so those stay consistent
with each other (one reload id links the telemetry row and the audit row).

Durable writes (the audit row is fsynced twice) run in a worker thread and are awaited:
the event loop keeps proxying plugin requests meanwhile, yet nothing is acknowledged
before it is on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

from powerx.config import SimulatorConfig
from powerx.observe import events
from powerx.observe.alerts import AlertChange, AlertMonitor
from powerx.observe.audit import AuditLog, AuditRecord
from powerx.observe.events import Event, EventBus
from powerx.observe.logs import LogHub, PluginContext
from powerx.observe.metrics import Metrics
from powerx.observe.otlp import OtlpExporter, otlp_endpoint
from powerx.observe.requests import RequestInspector
from powerx.observe.telemetry import ReloadRecord, TelemetryStore
from powerx.observe.webhook import WebhookSink

TELEMETRY_DB = "telemetry.db"
AUDIT_DB = "audit.db"
TICK_S = 0.5


def new_reload_id() -> str:
    return uuid.uuid4().hex


class Observer:
    def __init__(self, config: SimulatorConfig, state_dir: Path, tenant: str) -> None:
        rules = config.observability
        self.tenant = tenant
        self.telemetry = TelemetryStore(state_dir / TELEMETRY_DB)
        self.audit_log = AuditLog(state_dir / AUDIT_DB)
        self.metrics = Metrics()
        self.bus = EventBus()
        self.alerts = AlertMonitor(rules.alerts)
        self.logs = LogHub(self.telemetry, capacity=rules.log_buffer)
        self.requests = RequestInspector(rules.request_buffer)
        endpoint = otlp_endpoint(rules.otlp_endpoint)
        self.otlp = OtlpExporter(endpoint) if endpoint else None
        self.webhook = WebhookSink(rules.webhook_url) if rules.webhook_url else None
        if self.webhook is not None:
            self.bus.add_sink(self.webhook)
        self._ticker: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[object]] = set()
        self.bus.subscribe(events.GENERATION_STARTING, self._on_generation_starting)

    def _on_generation_starting(self, event: Event) -> None:
        """A plugin's lines from now on carry the version that is starting."""
        plugin, version = str(event.data["plugin"]), str(event.data["version"])
        self.logs.contexts[plugin] = PluginContext(version, self.tenant)

    def start(self) -> None:
        """Begin the periodic work (log flushes, alert windows); needs a running loop."""
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            await self.tick()

    async def tick(self) -> None:
        await asyncio.to_thread(self.logs.flush)
        await self._publish_alerts(self.alerts.evaluate())

    def _spawn(self, coroutine: Coroutine[Any, Any, object]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- what happened --------------------------------------------------------------------

    async def audit(
        self,
        action: str,
        plugin: str | None = None,
        details: Mapping[str, object] | None = None,
        ref: str | None = None,
    ) -> AuditRecord:
        record = await asyncio.to_thread(
            self.audit_log.append, action, plugin, details or {}, ref=ref
        )
        self.bus.publish(events.AUDIT, {"seq": record.seq, "action": action, "plugin": plugin})
        return record

    def _persist_reload(self, record: ReloadRecord, details: Mapping[str, object]) -> AuditRecord:
        self.telemetry.add_reload(record)
        return self.audit_log.append(
            f"reload.{record.status}", record.plugin, details, ref=record.id
        )

    async def reload_finished(
        self,
        record: ReloadRecord,
        message: str | None = None,
        context: Mapping[str, object] | None = None,
    ) -> None:
        """A hot reload ended (served, unchanged, failed or blocked): record it everywhere."""
        phases = {**record.phases, "total_ms": record.duration_ms}
        self.metrics.observe_reload(record.plugin, record.status, record.reason, phases)
        details: dict[str, Any] = {
            "digest": record.digest,
            "generation": record.generation,
            "version": record.version,
            "duration_ms": round(record.duration_ms, 2),
            "origin": record.origin,
        }
        if record.reason:
            details["reason"] = record.reason
        if message:
            details["message"] = message
        for key, value in (context or {}).items():
            details.setdefault(key, value)
        row = await asyncio.to_thread(self._persist_reload, record, details)
        self.bus.publish(
            events.AUDIT, {"seq": row.seq, "action": row.action, "plugin": record.plugin}
        )
        self.bus.publish(
            events.HOT_RELOAD,
            {
                "id": record.id,
                "plugin": record.plugin,
                "tenant": self.tenant,
                "version": record.version,
                "digest": record.digest,
                "status": record.status,
                "duration_ms": round(record.duration_ms, 2),
                "reason": record.reason,
                "generation": record.generation,
                "phases": {k: round(v, 2) for k, v in record.phases.items()},
            },
        )
        if record.status != "unchanged":
            failed = record.status in {"failed", "blocked"}
            if record.reason == "version_mismatch":
                changes = self.alerts.record_mismatch(record.plugin, record.ts)
            else:
                changes = self.alerts.record_reload(record.plugin, failed, record.ts)
            await self._publish_alerts(changes)
        if record.status in {"failed", "blocked"}:
            self.logs.record(
                record.plugin,
                record.generation,
                "system",
                f"reload {record.status}: {message or record.reason}",
                reason=record.reason,
                level="error",
            )
        if self.otlp is not None:
            self.otlp.record_reload(
                record.plugin,
                record.digest,
                record.status,
                record.reason,
                record.duration_ms,
                record.phases,
            )

    async def _publish_alerts(self, changes: list[AlertChange]) -> None:
        for change in changes:
            self.bus.publish(events.ALERT, change.to_dict())
            await self.audit(f"alert.{change.state}", change.alert.plugin, change.alert.to_dict())

    def client_report(
        self, kind: str, plugin: str, ref: str | None, payload: dict[str, Any]
    ) -> int:
        """A report the developer's client sent (latency seen, breakpoint sync stats)."""
        report_id = self.telemetry.add_client_report(kind, plugin, ref, payload)
        if kind == "reload" and isinstance(payload.get("latency_ms"), int | float):
            self.metrics.client_latency.labels(plugin).observe(float(payload["latency_ms"]))
        if kind == "breakpoint_sync":
            for key in ("set", "verified"):
                if isinstance(payload.get(key), int):
                    self.metrics.breakpoints.labels(plugin, key).inc(payload[key])
            if isinstance(payload.get("replay_ms"), int | float):
                self.metrics.breakpoint_replay.labels(plugin).observe(float(payload["replay_ms"]))
        self.bus.publish(
            events.TELEMETRY, {"id": report_id, "kind": kind, "plugin": plugin, "ref": ref}
        )
        return report_id

    def permission_denied(
        self, plugin: str, scope: str, api: str, enforced: bool, identity: str | None = None
    ) -> None:
        """A host API call outside the plugin's scopes, or a request (to a tool, or a host
        API call) made as an identity whose perms lack the permission (``identity``)."""
        self.metrics.permission_denials.labels(plugin, scope).inc()
        details = {"scope": scope, "api": api}
        if identity is not None:
            details["identity"] = identity
        # Called from the request path: the refusal goes out now, the row follows.
        self._spawn(
            self.audit("permission.denied" if enforced else "permission.warned", plugin, details)
        )

    def host_call(
        self,
        plugin: str,
        generation: int | None,
        method: str,
        code: str,
        latency_ms: float,
        *,
        tenant: str | None = None,
        message: str = "",
        request: Mapping[str, Any] | None = None,
        audit: str | None = None,
    ) -> None:
        """A call to the host's gRPC services: counted, and logged with its request (masked
        by key and text, as every log record); ``audit`` names an action to append too."""
        self.metrics.host_calls.labels(plugin, method, code).inc()
        level = "info" if code == "OK" else "error" if code == "INTERNAL" else "warning"
        text = f"gRPC {method} {code}" + (f": {message}" if message else "")
        line: dict[str, Any] = {"msg": text, "level": level, "method": method, "code": code}
        if request:
            line["request"] = request
        self.logs.record(
            plugin,
            generation,
            "grpc",
            json.dumps(line, default=str),
            latency_ms=latency_ms,
            tenant=tenant,
        )
        if audit is not None:
            details = {"method": method, "code": code, "tenant": tenant, "message": message}
            self._spawn(self.audit(audit, plugin, details))

    def egress_blocked(
        self, plugin: str, generation: int, host: str, port: int | None, route: str, reason: str
    ) -> None:
        """A plugin process tried to reach a host it may not (reported by its guard)."""
        self.metrics.egress_blocked.labels(plugin, reason).inc()
        where = f"{host}:{port}" if port else host
        self.logs.record(
            plugin,
            generation,
            "system",
            f"blocked egress to {where} ({reason}) via {route}",
            reason="egress_blocked",
            level="error",
        )
        details = {"host": host, "port": port, "route": route, "reason": reason}
        self.bus.publish(
            events.EGRESS_BLOCKED, {"plugin": plugin, "generation": generation, **details}
        )
        self._spawn(self.audit("egress.blocked", plugin, {"generation": generation, **details}))

    # -- lifecycle -------------------------------------------------------------------------

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await asyncio.gather(*self._background, return_exceptions=True)
        self.bus.close()
        self.logs.bus.close()
        self.logs.flush()
        if self.webhook is not None:
            await self.webhook.close()
        if self.otlp is not None:
            await asyncio.to_thread(self.otlp.shutdown)
        self.telemetry.close()
        self.audit_log.close()


def reload_record(
    reload_id: str,
    plugin: str,
    status: str,
    started: float,
    *,
    version: str | None = None,
    digest: str | None = None,
    generation: int | None = None,
    reason: str | None = None,
    phases: Mapping[str, float] | None = None,
    origin: str = "server",
    duration_ms: float | None = None,
) -> ReloadRecord:
    """A record for a reload that began at ``started`` (perf_counter) and ends now."""
    return ReloadRecord(
        id=reload_id,
        ts=time.time(),
        plugin=plugin,
        status=status,
        duration_ms=duration_ms
        if duration_ms is not None
        else (time.perf_counter() - started) * 1000,
        version=version,
        digest=digest,
        generation=generation,
        reason=reason,
        phases=dict(phases or {}),
        origin=origin,
    )
