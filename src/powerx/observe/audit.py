"""Append-only, hash-chained audit trail of every debug action, in SQLite (WAL).

Each row's ``hash`` is the SHA-256 of its content together with the previous row's hash,
so an edited, removed or reordered row breaks the chain at a row :meth:`AuditLog.verify`
can name. The chain alone cannot show rows cut from its end, so after every commit the
newest ``seq`` and ``hash`` are also written to ``<db>.head``, the tail anchor.

Written by the simulator only (one process; appends are serialised per file). Other
processes, such as the CLI, read the file while it runs through :func:`open_readonly`.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.observe.audit_chain import (
    GENESIS,
    WARNING_KINDS,
    ChainProblem,
    ChainRow,
    Verification,
    as_text,
    canonical,
    check_chain,
    details_of,
    head_path,
    optional_text,
    read_head,
    row_digest,
    write_head,
)
from powerx.observe.masking import mask_known_value

__all__ = ["GENESIS", "AuditLog", "AuditRecord", "ChainProblem", "Verification", "open_readonly"]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    action TEXT NOT NULL,
    plugin TEXT,
    actor TEXT NOT NULL,
    ref TEXT,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_plugin ON audit (plugin, seq);
CREATE INDEX IF NOT EXISTS audit_action ON audit (action, seq);
"""
_COLUMNS = "seq, ts, action, plugin, actor, ref, details, prev_hash, hash"
_BUSY_TIMEOUT_S = 10.0

_logger = logging.getLogger(__name__)
_locks: dict[Path, threading.RLock] = {}
_locks_guard = threading.Lock()


@dataclass(frozen=True)
class AuditRecord:
    """One entry of the audit trail."""

    seq: int
    ts: float
    action: str
    plugin: str | None
    actor: str
    ref: str | None
    details: dict[str, object]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "action": self.action,
            "plugin": self.plugin,
            "actor": self.actor,
            "ref": self.ref,
            "details": dict(self.details),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def _record(raw: Sequence[object]) -> AuditRecord:
    """A record from a stored row, tolerating rows edited into nonsense (verify names them)."""
    seq, ts, action, plugin, actor, ref, details, prev_hash, digest = raw
    return AuditRecord(
        seq=seq if isinstance(seq, int) else 0,
        ts=float(ts) if isinstance(ts, int | float) else 0.0,
        action=as_text(action),
        plugin=optional_text(plugin),
        actor=as_text(actor),
        ref=optional_text(ref),
        details=details_of(details),
        prev_hash=as_text(prev_hash),
        hash=as_text(digest),
    )


# -- the log -------------------------------------------------------------------------------


def _lock_for(path: Path) -> threading.RLock:
    # One lock per file, shared by every AuditLog on it in this process, so two instances
    # cannot interleave their commits and head writes.
    key = path.resolve()
    with _locks_guard:
        return _locks.setdefault(key, threading.RLock())


def _unavailable(path: Path, exc: BaseException) -> PowerXError:
    return PowerXError(
        ErrorCode.AUDIT_UNAVAILABLE,
        f"The audit log {path} cannot be opened: {exc}.",
        "check that the file is a PowerX audit log and its folder is readable and writable; "
        "move a damaged file aside and restart the simulator to start a new log.",
        status=500,
    )


class AuditLog:
    """The audit trail of one state folder: read-write with ``AuditLog(path)`` (the
    simulator), read-only with :func:`open_readonly` (the CLI, while the simulator runs)."""

    path: Path
    head_path: Path
    _conn: sqlite3.Connection | None
    _lock: threading.RLock
    _readonly: bool

    def __init__(self, path: Path) -> None:
        """Open or create the log, and repair a head anchor a crash left behind."""
        self._open(path, readonly=False)

    def _open(self, path: Path, *, readonly: bool) -> None:
        self.path = path
        self.head_path = head_path(path)
        self._lock = _lock_for(path)
        self._readonly = readonly
        self._conn = None
        try:
            if readonly:
                uri = path.resolve().as_uri() + "?mode=ro"
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                uri = str(path)
            conn = sqlite3.connect(
                uri,
                uri=readonly,
                timeout=_BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as exc:
            raise _unavailable(path, exc) from exc
        self._conn = conn
        try:
            if readonly:
                found = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'"
                if conn.execute(found).fetchone() is None:
                    raise sqlite3.DatabaseError("it has no audit table")
            else:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.executescript(_SCHEMA)
                with self._lock:
                    self._repair_head()
        except sqlite3.Error as exc:
            self.close()
            raise _unavailable(path, exc) from exc

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise PowerXError(
                ErrorCode.AUDIT_CLOSED, f"The audit log {self.path} is closed.", status=500
            )
        return self._conn

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                return [tuple(row) for row in self._connection().execute(sql, params)]
            except sqlite3.Error as exc:
                raise _unavailable(self.path, exc) from exc

    def append(
        self,
        action: str,
        plugin: str | None = None,
        details: Mapping[str, object] | None = None,
        *,
        actor: str = "developer",
        ref: str | None = None,
        ts: float | None = None,
    ) -> AuditRecord:
        """Add an entry at the end of the chain, then move the head anchor to it.

        ``details`` is stored as canonical JSON (values JSON cannot hold become strings).
        """
        if self._readonly:
            raise PowerXError(
                ErrorCode.AUDIT_READONLY,
                f"The audit log {self.path} was opened read-only.",
                status=500,
            )
        if not action:
            raise ValueError("an audit entry needs an action")
        when = time.time() if ts is None else float(ts)
        if not math.isfinite(when):
            raise ValueError(f"an audit entry needs a finite ts, not {ts!r}")
        text = canonical(mask_known_value(dict(details or {})))
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    last_seq, last_hash = self._chain_end(conn)
                    fields = (last_seq + 1, when, action, plugin, actor, ref, text, last_hash)
                    digest = row_digest(fields)
                    if digest is None:
                        raise TypeError("audit action, plugin, actor and ref must be text")
                    conn.execute(
                        f"INSERT INTO audit ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (*fields, digest),
                    )
                    conn.execute("COMMIT")
                finally:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                raise PowerXError(
                    ErrorCode.AUDIT_WRITE_FAILED,
                    f"Could not append to the audit log {self.path}: {exc}.",
                    "check that the state folder is writable and the disk is not full.",
                    status=500,
                ) from exc
            self._move_head(last_seq + 1, digest)
        return AuditRecord(
            last_seq + 1, when, action, plugin, actor, ref, details_of(text), last_hash, digest
        )

    def _chain_end(self, conn: sqlite3.Connection) -> tuple[int, str]:
        """Where the next entry links: the last row, unless the head anchor is at or past
        it. Then rows were cut or replaced at the end, and linking to the anchor keeps
        that visible to verify() after further appends."""
        last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq, digest = (int(last[0]), as_text(last[1])) if last else (0, GENESIS)
        head, _ = read_head(self.head_path)
        if head is not None and head.seq >= seq:
            return head.seq, head.hash
        return seq, digest

    def _move_head(self, seq: int, digest: str) -> None:
        try:
            write_head(self.head_path, seq, digest)
        except OSError as exc:
            # The row is committed; the anchor is behind by one, which the next append or
            # open repairs. Failing the debug action here would lose nothing but the action.
            _logger.warning("could not update the audit head anchor %s: %s", self.head_path, exc)

    def _repair_head(self) -> None:
        """Bring forward a head anchor that is behind the table (or missing) because the
        process died between a commit and the head write, if the rows after the anchor
        chain onto it intact; anything else is left for verify() to report."""
        conn = self._connection()
        last = conn.execute("SELECT seq FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        head, note = read_head(self.head_path)
        if last is None or (head is not None and head.seq >= last[0]):
            return
        seq, expected = (head.seq, head.hash) if head else (0, GENESIS)
        if head is not None:
            anchor = conn.execute("SELECT hash FROM audit WHERE seq = ?", (head.seq,)).fetchone()
            if anchor is None or anchor[0] != head.hash:
                return
        sql = f"SELECT {_COLUMNS} FROM audit WHERE seq > ? ORDER BY seq"
        for raw in conn.execute(sql, (seq,)).fetchall():
            row = ChainRow.of(raw)
            if row.seq != seq + 1 or row.prev_hash != expected or not row.verifies_at(row.seq):
                return
            seq, expected = row.seq, as_text(row.hash)
        if head is None and seq > 1:
            _logger.warning(
                "audit head anchor %s was %s with %d rows in the log; rebuilt from row %d",
                self.head_path,
                f"unreadable ({note})" if note else "missing",
                seq,
                seq,
            )
        self._move_head(seq, expected)

    def records(
        self,
        plugin: str | None = None,
        action: str | None = None,
        since_seq: int = 0,
        limit: int | None = None,
    ) -> list[AuditRecord]:
        """Entries after ``since_seq`` in ascending seq order, optionally only those of one
        plugin and/or action; with ``limit``, the newest ``limit`` of them."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must not be negative, not {limit}")
        where = ["seq > ?"]
        params: list[object] = [since_seq]
        for column, value in (("plugin", plugin), ("action", action)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = f"SELECT {_COLUMNS} FROM audit WHERE {' AND '.join(where)} ORDER BY seq"
        if limit is not None:
            sql += " DESC LIMIT ?"
            params.append(limit)
        rows = self._query(sql, params)
        if limit is not None:
            rows.reverse()
        return [_record(row) for row in rows]

    def verify(self) -> Verification:
        """Walk the chain in seq order and name every row that was edited, removed,
        reordered, forged or cut from the end. Never raises on rows edited into nonsense."""
        with self._lock:
            # The anchor first: the writer moves it only after a commit, so the rows read
            # next are at least as new and a reader racing the writer sees no false cut.
            head, note = read_head(self.head_path)
            raw = self._query(f"SELECT {_COLUMNS} FROM audit ORDER BY seq")
        rows = [ChainRow.of(row) for row in raw]
        problems = check_chain(rows, head, note, self.head_path.name)
        ok = all(problem.kind in WARNING_KINDS for problem in problems)
        return Verification(ok=ok, checked=len(rows), problems=problems)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def open_readonly(path: Path) -> AuditLog:
    """Open an existing audit log for :meth:`~AuditLog.records` and :meth:`~AuditLog.verify`,
    also while the simulator is writing it."""
    if not path.is_file():
        raise PowerXError(
            ErrorCode.AUDIT_MISSING,
            f"No audit log at {path}.",
            "start the simulator in this folder (`powerx host start --mock PATH`), or set "
            "POWERX_STATE_DIR to the folder that holds it.",
            status=404,
        )
    log = AuditLog.__new__(AuditLog)
    log._open(path, readonly=True)
    return log
