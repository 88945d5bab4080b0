"""Reconcile and summarise a project's telemetry, as the CLI and the workflow scripts do.

With a simulator running, reconciliation goes through it (it is the only writer of the
audit chain, so a repair must be appended by it); with none running, the files under
``.powerx/`` are opened directly.
"""

from __future__ import annotations

from typing import Any

from powerx.client import sync
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.observe.audit import AuditLog
from powerx.observe.observer import AUDIT_DB, TELEMETRY_DB
from powerx.observe.reconcile import reconcile
from powerx.observe.telemetry import TelemetryStore
from powerx.paths import state_dir
from powerx.running import find_host_info


def _running() -> bool:
    return find_host_info() is not None


def reconcile_project(fix: bool) -> dict[str, Any]:
    if _running():
        try:
            result: dict[str, Any] = sync.request(
                "POST", "/internal/debug/telemetry/reconcile", json_body={"fix": fix}
            )
            result["via"] = "simulator"
            return result
        except PowerXError as error:
            if error.code != "host_not_running":
                raise
    folder = state_dir()
    telemetry = TelemetryStore(folder / TELEMETRY_DB, readonly=not fix)
    if not (folder / AUDIT_DB).is_file():
        telemetry.close()
        raise PowerXError(
            ErrorCode.AUDIT_MISSING,
            f"No audit log at {folder / AUDIT_DB}.",
            "run the simulator in this folder first, or set POWERX_STATE_DIR.",
        )
    audit = AuditLog(folder / AUDIT_DB)
    try:
        report = reconcile(telemetry, audit, fix=fix)
        if fix and report.repaired:
            audit.append("telemetry.reconcile", None, {"repaired": report.repaired})
        return {**report.to_dict(), "via": "files"}
    finally:
        telemetry.close()
        audit.close()


def project_summary() -> dict[str, Any]:
    """Reloads, success rate, p50/p95, failures by reason, mismatches (from the files)."""
    telemetry = TelemetryStore(state_dir() / TELEMETRY_DB, readonly=True)
    try:
        summary = telemetry.summary(recent=0)
    finally:
        telemetry.close()
    summary.pop("recent", None)
    return summary
