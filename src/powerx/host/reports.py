"""What the simulator's parts report (plugin log lines, dependency installs, mock data
edits, blocked egress, gRPC calls, permission denials), turned into the observer's
records: masked, counted, audited, published."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from powerx.config import SimulatorConfig
from powerx.host.gateway import Denial
from powerx.host.generations import Generation, LogLine, PluginSlot
from powerx.host.mock_data import MockDataChange
from powerx.host.rbac import RbacDenial
from powerx.host.upstream import CallRecord, TenantDirectory
from powerx.host.upstream.sts import EXCHANGE
from powerx.observe import events
from powerx.observe.masking import mask_line
from powerx.observe.observer import Observer


class HostReports:
    def __init__(
        self,
        config: SimulatorConfig,
        observer: Observer,
        slots: Mapping[str, PluginSlot],
        tenant_ids: TenantDirectory,
        print_log: Callable[[LogLine], None] | None = None,
        print_mock_data: Callable[[MockDataChange], None] | None = None,
    ) -> None:
        self._config = config
        self._observer = observer
        self._slots = slots
        self._tenant_ids = tenant_ids
        self._print_log = print_log
        self._print_mock_data = print_mock_data
        self.denials: list[Denial] = []

    def _serving_number(self, plugin: str | None) -> int | None:
        slot = self._slots.get(plugin) if plugin else None
        return slot.active.number if slot is not None and slot.active is not None else None

    def log(self, line: LogLine) -> None:
        """Every plugin line is masked before it is kept, streamed or printed."""
        observer = self._observer
        record = observer.logs.record(line.plugin, line.generation, line.stream, line.line)
        if self._print_log is not None:
            self._print_log(
                LogLine(line.ts, line.plugin, line.generation, line.stream, mask_line(line.line))
                if record["message"] != line.line
                else line
            )

    def dependency_progress(self, plugin: str, line: str) -> None:
        """A step of installing a plugin's dependencies: in its log and on the event bus."""
        slot = self._slots.get(plugin)
        number = slot.last_number if slot else 0
        self.log(LogLine(time.time(), plugin, number, "system", f"dependencies: {line}"))
        self._observer.bus.publish(events.DEPENDENCIES, {"plugin": plugin, "message": line})

    def mock_data(self, change: MockDataChange) -> None:
        self._observer.bus.publish(events.MOCK_DATA, change.to_dict())
        if self._print_mock_data is not None:
            self._print_mock_data(change)

    def egress_blocked(
        self, slot: PluginSlot, generation: Generation, message: dict[str, Any]
    ) -> None:
        """A plugin's own guard refused a connection."""
        self._observer.egress_blocked(
            slot.manifest.id,
            generation.number,
            str(message.get("host")),
            message.get("port") if isinstance(message.get("port"), int) else None,
            str(message.get("route")),
            str(message.get("reason")),
        )

    def proxy_blocked(self, plugin: str, host: str, port: int, reason: str) -> None:
        """The egress proxy refused a connection of a plugin's tool (curl, pip ...)."""
        generation = self._serving_number(plugin) or 0
        self._observer.egress_blocked(plugin, generation, host, port, "proxy", reason)

    def grpc_call(self, call: CallRecord) -> None:
        tenant = self._tenant_ids.get(call.tenant_id) if call.tenant_id else None
        audit = None
        if call.method == EXCHANGE:  # credentials traded for a token: a security event
            audit = "sts.exchange" if call.error is None else "sts.refused"
        self._observer.host_call(
            call.plugin or "unknown",
            self._serving_number(call.plugin),
            call.method,
            call.code,
            call.latency_ms,
            tenant=tenant.name if tenant else None,
            message=call.error.message if call.error else "",
            request=call.request,
            audit=audit,
        )

    def denied(self, denial: Denial) -> None:
        self.denials.append(denial)
        enforced = (
            denial.enforced
            or self._config.permission_policy.mode == "enforce"
            or "policy" in denial.reason
        )
        self._observer.permission_denied(
            denial.plugin, denial.scope, denial.api, enforced, denial.identity
        )

    def rbac_denied(self, denial: RbacDenial) -> None:
        """An identity lacked a permission (a tool's, or a host API's scope): refused
        whatever the permission policy's mode, counted and audited like other denials."""
        self.denied(
            Denial(
                denial.plugin,
                denial.what,
                str(denial.permission),
                f"identity '{denial.identity}' lacks the permission",
                enforced=True,
                identity=denial.identity,
            )
        )
