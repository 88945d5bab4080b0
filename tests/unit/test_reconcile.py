"""Telemetry <-> audit reconciliation over real SQLite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from powerx.observe.audit import AuditLog
from powerx.observe.reconcile import reconcile
from powerx.observe.telemetry import ReloadRecord, TelemetryStore


def _both(tmp_path: Path, count: int) -> tuple[TelemetryStore, AuditLog]:
    telemetry = TelemetryStore(tmp_path / "telemetry.db")
    audit = AuditLog(tmp_path / "audit.db")
    for n in range(count):
        status = "failed" if n % 3 == 2 else "ok"
        record = ReloadRecord(
            id=f"r{n}",
            ts=float(n),
            plugin="p",
            status=status,
            duration_ms=10.0 + n,
            generation=n,
            reason="build_failed" if status == "failed" else None,
        )
        telemetry.add_reload(record)
        audit.append(
            f"reload.{status}",
            "p",
            {"generation": n, "duration_ms": 10.0 + n, "reason": record.reason},
            ref=record.id,
        )
    return telemetry, audit


def test_agreeing_sides_have_no_differences(tmp_path: Path) -> None:
    telemetry, audit = _both(tmp_path, 6)
    report = reconcile(telemetry, audit)
    assert report.ok and report.differences == [] and report.telemetry_rows == 6


def test_a_deleted_telemetry_row_is_rebuilt_from_its_audit_row(tmp_path: Path) -> None:
    telemetry, audit = _both(tmp_path, 6)
    with sqlite3.connect(tmp_path / "telemetry.db") as connection:
        connection.execute("DELETE FROM reloads WHERE id = 'r2'")
    report = reconcile(telemetry, audit)
    assert [(d.ref, d.kind) for d in report.differences] == [("r2", "missing_in_telemetry")]
    assert not report.ok
    fixed = reconcile(telemetry, audit, fix=True)
    assert fixed.repaired == 1 and fixed.ok
    rebuilt = next(r for r in telemetry.reloads() if r.id == "r2")
    assert (rebuilt.status, rebuilt.reason, rebuilt.origin) == (
        "failed",
        "build_failed",
        "repaired",
    )
    assert reconcile(telemetry, audit).differences == []


def test_a_reload_missing_from_audit_is_appended_marked_and_the_chain_holds(
    tmp_path: Path,
) -> None:
    telemetry, audit = _both(tmp_path, 3)
    telemetry.add_reload(ReloadRecord(id="late", ts=9.0, plugin="p", status="ok", duration_ms=5))
    report = reconcile(telemetry, audit, fix=True)
    assert [(d.ref, d.kind) for d in report.differences] == [("late", "missing_in_audit")]
    appended = audit.records()[-1]
    assert (appended.ref, appended.actor, appended.details["reconciled"]) == (
        "late",
        "reconcile",
        True,
    )
    assert audit.verify().ok
    assert reconcile(telemetry, audit).differences == []


def test_differing_status_is_reported_and_audit_wins(tmp_path: Path) -> None:
    telemetry, audit = _both(tmp_path, 3)
    with sqlite3.connect(tmp_path / "telemetry.db") as connection:
        connection.execute("UPDATE reloads SET status = 'ok' WHERE id = 'r2'")
    report = reconcile(telemetry, audit, fix=True)
    assert [(d.ref, d.kind) for d in report.differences] == [("r2", "status_differs")]
    assert next(r for r in telemetry.reloads() if r.id == "r2").status == "failed"
