"""Telemetry records in SQLite under ``.powerx/`` (WAL): one row per hot reload (server
side, or reported by the client when the build failed before any upload), the client's
own reports (latency, breakpoint sync), and the masked plugin log records.

Written by the simulator only; readers (the CLI, the workflow scripts) may open the file
while it runs, which WAL allows.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.observe.masking import mask_known, mask_known_value

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reloads (
    id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    plugin TEXT NOT NULL,
    version TEXT,
    digest TEXT,
    generation INTEGER,
    status TEXT NOT NULL,
    reason TEXT,
    duration_ms REAL NOT NULL,
    phases TEXT NOT NULL,
    origin TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reloads_plugin_ts ON reloads (plugin, ts);
CREATE TABLE IF NOT EXISTS client_reports (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    plugin TEXT NOT NULL,
    ref TEXT,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    plugin TEXT NOT NULL,
    generation INTEGER,
    level TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_plugin ON logs (plugin, id);
"""
LOG_ROWS_KEPT = 50_000


@dataclass(frozen=True)
class ReloadRecord:
    """One hot reload as telemetry keeps it; ``id`` is shared with the audit row."""

    id: str
    ts: float
    plugin: str
    status: str  # ok | unchanged | failed | blocked
    duration_ms: float
    version: str | None = None
    digest: str | None = None
    generation: int | None = None
    reason: str | None = None
    phases: dict[str, float] = field(default_factory=dict)
    origin: str = "server"  # server | client | repaired

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": self.ts,
            "plugin": self.plugin,
            "version": self.version,
            "digest": self.digest,
            "generation": self.generation,
            "status": self.status,
            "reason": self.reason,
            "duration_ms": round(self.duration_ms, 2),
            "phases": {k: round(v, 2) for k, v in self.phases.items()},
            "origin": self.origin,
        }


def _row_to_reload(row: sqlite3.Row) -> ReloadRecord:
    return ReloadRecord(
        id=row["id"],
        ts=row["ts"],
        plugin=row["plugin"],
        status=row["status"],
        duration_ms=row["duration_ms"],
        version=row["version"],
        digest=row["digest"],
        generation=row["generation"],
        reason=row["reason"],
        phases=json.loads(row["phases"] or "{}"),
        origin=row["origin"],
    )


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


class TelemetryStore:
    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        self._lock = threading.Lock()
        if readonly:
            if not path.is_file():
                raise PowerXError(
                    ErrorCode.TELEMETRY_MISSING,
                    f"No telemetry database at {path}.",
                    "start the simulator in this folder (`powerx host start --mock PATH`), or "
                    "set POWERX_STATE_DIR to the folder that holds it.",
                )
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        self._db.row_factory = sqlite3.Row

    # -- reloads -------------------------------------------------------------------------

    def add_reload(self, record: ReloadRecord) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO reloads VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    record.id,
                    record.ts,
                    record.plugin,
                    record.version,
                    record.digest,
                    record.generation,
                    record.status,
                    mask_known(record.reason) if record.reason else record.reason,
                    record.duration_ms,
                    json.dumps(record.phases, sort_keys=True),
                    record.origin,
                ),
            )

    def reloads(
        self, plugin: str | None = None, since: float = 0.0, limit: int | None = None
    ) -> list[ReloadRecord]:
        query = "SELECT * FROM reloads WHERE ts >= ?"
        args: list[Any] = [since]
        if plugin is not None:
            query += " AND plugin = ?"
            args.append(plugin)
        query += " ORDER BY ts DESC, rowid DESC"
        if limit is not None:
            query += " LIMIT ?"
            args.append(limit)
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [_row_to_reload(row) for row in reversed(rows)]

    def summary(self, recent: int = 200) -> dict[str, Any]:
        """Counts, success rate and latency percentiles of served reloads."""
        records = self.reloads()
        counts = {s: sum(1 for r in records if r.status == s) for s in ("ok", "failed", "blocked")}
        unchanged = sum(1 for r in records if r.status == "unchanged")
        attempted = counts["ok"] + counts["failed"] + counts["blocked"]
        served = sorted(r.duration_ms for r in records if r.status == "ok")
        by_reason: dict[str, int] = {}
        for r in records:
            if r.status in {"failed", "blocked"}:
                by_reason[r.reason or "unknown"] = by_reason.get(r.reason or "unknown", 0) + 1
        p50, p95 = percentile(served, 50), percentile(served, 95)
        return {
            "reloads": attempted,
            "unchanged": unchanged,
            **counts,
            "success_rate": counts["ok"] / attempted if attempted else 1.0,
            "failure_rate": (counts["failed"] + counts["blocked"]) / attempted
            if attempted
            else 0.0,
            "p50_ms": round(p50, 1) if p50 is not None else None,
            "p95_ms": round(p95, 1) if p95 is not None else None,
            "failures_by_reason": by_reason,
            "mismatches": by_reason.get("version_mismatch", 0),
            "recent": [r.to_dict() for r in records[-recent:]],
        }

    # -- client reports ------------------------------------------------------------------

    def add_client_report(self, kind: str, plugin: str, ref: str | None, payload: object) -> int:
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO client_reports (ts, kind, plugin, ref, payload) VALUES (?,?,?,?,?)",
                (
                    time.time(),
                    kind,
                    plugin,
                    ref,
                    json.dumps(mask_known_value(payload), sort_keys=True),
                ),
            )
        return int(cursor.lastrowid or 0)

    def client_reports(self, kind: str | None = None) -> list[dict[str, Any]]:
        query, args = "SELECT * FROM client_reports", []
        if kind is not None:
            query += " WHERE kind = ?"
            args.append(kind)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY id", args).fetchall()
        return [{**dict(row), "payload": json.loads(row["payload"])} for row in rows]

    # -- logs ----------------------------------------------------------------------------

    def add_logs(self, records: Iterable[dict[str, Any]]) -> None:
        """Store already-masked log records; the oldest are pruned past LOG_ROWS_KEPT."""
        rows = [
            (r["ts"], r["plugin"], r.get("generation"), r["level"], json.dumps(mask_known_value(r)))
            for r in records
        ]
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO logs (ts, plugin, generation, level, record) VALUES (?,?,?,?,?)",
                rows,
            )
            self._db.execute(
                "DELETE FROM logs WHERE id <= (SELECT MAX(id) FROM logs) - ?", (LOG_ROWS_KEPT,)
            )
            self._db.execute("COMMIT")

    def logs(self, plugin: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        query, args = "SELECT record FROM logs", []
        if plugin is not None:
            query += " WHERE plugin = ?"
            args.append(plugin)
        query += " ORDER BY id DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(query, [*args, limit]).fetchall()
        return [json.loads(row["record"]) for row in reversed(rows)]

    def close(self) -> None:
        with self._lock:
            self._db.close()
