"""Telemetry <-> audit reconciliation: every reload has a telemetry row and an audit row
sharing one id. A crash between the two writes, or a hand-edited database, leaves one
side short; this finds the differences and, asked to, repairs them.

Repairs never rewrite history: a telemetry row missing is rebuilt from the audit row
(``origin = "repaired"``); an audit row missing is appended now, marked ``reconciled``,
because the chain is append-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from powerx.observe.audit import AuditLog, AuditRecord
from powerx.observe.telemetry import ReloadRecord, TelemetryStore

RELOAD_PREFIX = "reload."


@dataclass
class Difference:
    ref: str
    plugin: str
    kind: str  # missing_in_telemetry | missing_in_audit | status_differs
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"ref": self.ref, "plugin": self.plugin, "kind": self.kind, "message": self.message}


@dataclass
class ReconcileReport:
    telemetry_rows: int
    audit_rows: int
    differences: list[Difference] = field(default_factory=list)
    repaired: int = 0

    @property
    def ok(self) -> bool:
        return not self.differences or self.repaired == len(self.differences)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "telemetry_rows": self.telemetry_rows,
            "audit_rows": self.audit_rows,
            "differences": [d.to_dict() for d in self.differences],
            "repaired": self.repaired,
        }


def _from_audit(row: AuditRecord) -> ReloadRecord:
    details = row.details
    generation = details.get("generation")
    duration = details.get("duration_ms")
    return ReloadRecord(
        id=row.ref or "",
        ts=row.ts,
        plugin=row.plugin or "unknown",
        status=row.action.removeprefix(RELOAD_PREFIX),
        duration_ms=float(duration) if isinstance(duration, int | float) else 0.0,
        version=str(details["version"]) if details.get("version") else None,
        digest=str(details["digest"]) if details.get("digest") else None,
        generation=generation if isinstance(generation, int) else None,
        reason=str(details["reason"]) if details.get("reason") else None,
        origin="repaired",
    )


def reconcile(telemetry: TelemetryStore, audit: AuditLog, fix: bool = False) -> ReconcileReport:
    reloads = {record.id: record for record in telemetry.reloads()}
    audited: dict[str, AuditRecord] = {}
    for row in audit.records():
        if row.action.startswith(RELOAD_PREFIX) and row.ref:
            audited.setdefault(row.ref, row)
    report = ReconcileReport(len(reloads), len(audited))
    for ref, row in audited.items():
        status = row.action.removeprefix(RELOAD_PREFIX)
        record = reloads.get(ref)
        if record is None:
            report.differences.append(
                Difference(
                    ref,
                    row.plugin or "unknown",
                    "missing_in_telemetry",
                    f"audit row {row.seq} ({row.action} {row.plugin}) has no telemetry row",
                )
            )
            if fix:
                telemetry.add_reload(_from_audit(row))
                report.repaired += 1
        elif record.status != status:
            report.differences.append(
                Difference(
                    ref,
                    record.plugin,
                    "status_differs",
                    f"telemetry says {record.status}, audit row {row.seq} says {status}",
                )
            )
            if fix:  # the audit chain is the record of truth
                telemetry.add_reload(_from_audit(row))
                report.repaired += 1
    for ref, record in reloads.items():
        if ref not in audited:
            report.differences.append(
                Difference(
                    ref,
                    record.plugin,
                    "missing_in_audit",
                    f"telemetry reload {ref[:12]} ({record.status} {record.plugin}) "
                    "has no audit row",
                )
            )
            if fix:
                audit.append(
                    f"{RELOAD_PREFIX}{record.status}",
                    record.plugin,
                    {
                        "digest": record.digest,
                        "generation": record.generation,
                        "version": record.version,
                        "duration_ms": round(record.duration_ms, 2),
                        "reason": record.reason,
                        "reconciled": True,
                    },
                    ref=ref,
                    actor="reconcile",
                )
                report.repaired += 1
    return report
