"""Append-only, hash-chained audit trail of every debug action, in SQLite (WAL).

Each row's ``hash`` is the SHA-256 of its content together with the previous row's hash,
so an edited, removed or reordered row breaks the chain at a row :meth:`AuditLog.verify`
can name. The chain alone cannot show rows cut from its end, so after every commit the
newest ``seq`` and ``hash`` are also written to ``<db>.head``, the tail anchor.

Written by the simulator only (one process; appends are serialised per file). Other
processes, such as the CLI, read the file while it runs through :func:`open_readonly`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from powerx.errors import PowerXError

GENESIS = "0" * 64
"""The ``prev_hash`` of the first row."""

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
# How many hashes verify() may spend looking for the place of a row whose predecessor is
# gone (rows renumbered after a deletion); beyond it such rows are reported as edited.
_SEARCH_BUDGET = 200_000
_WARNING_KINDS = frozenset({"head_missing"})

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


@dataclass(frozen=True)
class ChainProblem:
    """One break in the chain; ``seq`` names the row (or the first missing row)."""

    seq: int
    kind: str  # edited | removed | reordered | truncated | head_missing (a warning)
    message: str


@dataclass(frozen=True)
class Verification:
    """``ok`` is false when any problem other than a warning (``head_missing``) was found."""

    ok: bool
    checked: int
    problems: list[ChainProblem]


# -- encoding ------------------------------------------------------------------------------


# Built once: json.dumps with options builds a new encoder per call, which dominates
# verify() on a long log.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
).encode
_STRICT = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _canonical(value: object) -> str:
    """Sorted keys, no spaces; values JSON cannot hold become their ``str``."""
    return _CANONICAL(value)


def _digest(fields: Sequence[object]) -> str | None:
    """SHA-256 hex of ``[seq, ts, action, plugin, actor, ref, details, prev_hash]`` as
    compact JSON; None when a row was edited into values JSON cannot express."""
    try:
        text = _STRICT(list(fields))
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _text(value: object) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _parsed(value: object) -> object:
    try:
        return json.loads(value) if isinstance(value, str) else None
    except (ValueError, RecursionError):
        return None


def _details(value: object) -> dict[str, object]:
    parsed = _parsed(value)
    return parsed if isinstance(parsed, dict) else {"invalid_details": _text(value)}


def _record(raw: Sequence[object]) -> AuditRecord:
    """A record from a stored row, tolerating rows edited into nonsense (verify names them)."""
    seq, ts, action, plugin, actor, ref, details, prev_hash, digest = raw
    return AuditRecord(
        seq=seq if isinstance(seq, int) else 0,
        ts=float(ts) if isinstance(ts, int | float) else 0.0,
        action=_text(action),
        plugin=_optional_text(plugin),
        actor=_text(actor),
        ref=_optional_text(ref),
        details=_details(details),
        prev_hash=_text(prev_hash),
        hash=_text(digest),
    )


# -- the head anchor -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Head:
    seq: int
    hash: str


def _head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


def _read_head(path: Path) -> tuple[_Head | None, str | None]:
    """The anchor, or (None, None) when there is none, or (None, why) when unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except ValueError:
        return None, "not JSON"
    except OSError as exc:
        return None, exc.strerror or str(exc)
    if (
        isinstance(data, dict)
        and isinstance(data.get("seq"), int)
        and isinstance(data.get("hash"), str)
    ):
        return _Head(data["seq"], data["hash"]), None
    return None, "it is not {seq, hash}"


def _write_head(path: Path, seq: int, digest: str) -> None:
    # Temp file + fsync + rename: a crash leaves the old anchor or the new one, never a
    # torn file. The folder is not fsynced: a rename lost in a crash leaves the previous
    # anchor, one row behind the table, which opening the log repairs.
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(_canonical({"seq": seq, "hash": digest}).encode())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


# -- checking the chain --------------------------------------------------------------------


@dataclass(slots=True)
class _Row:
    seq: int
    fields: tuple[object, ...]  # ts, action, plugin, actor, ref, details, prev_hash
    hash: object

    @classmethod
    def of(cls, raw: Sequence[object]) -> _Row:
        seq = raw[0]
        return cls(seq if isinstance(seq, int) else 0, tuple(raw[1:8]), raw[8])

    @property
    def prev_hash(self) -> object:
        return self.fields[6]

    @property
    def label(self) -> str:
        action, plugin = self.fields[1], self.fields[2]
        parts = [_text(action)[:60]] + ([] if plugin is None else [_text(plugin)[:60]])
        return " ".join(parts)

    def verifies_at(self, seq: int) -> bool:
        return isinstance(self.hash, str) and _digest([seq, *self.fields]) == self.hash


def _invalid_content(row: _Row) -> str | None:
    ts, action, plugin, actor, ref, details, _ = row.fields
    if not isinstance(ts, int | float):
        return "its ts is not a number"
    if not (isinstance(action, str) and isinstance(actor, str)):
        return "its action or actor is not text"
    if not (isinstance(plugin, str | None) and isinstance(ref, str | None)):
        return "its plugin or ref is not text"
    if not isinstance(_parsed(details), dict):
        return "its details are not a JSON object"
    return None


def _nearby(seq: int, upper: int) -> Iterator[int]:
    """1..upper except ``seq``, nearest first: renumbered rows moved by a little."""
    for distance in range(1, max(seq, upper - seq) + 1):
        for guess in (seq + distance, seq - distance):
            if 1 <= guess <= upper:
                yield guess


def _place_rows(rows: list[_Row], upper: int) -> dict[int, int | None]:
    """For each row, the seq its content was written at (where its hash verifies), or None
    when its content was changed. A moved row is placed by following its ``prev_hash``
    to the row written before it; only when that row is gone are seqs tried one by one."""
    placed: dict[int, int | None] = {}
    origin_of_hash: dict[object, int] = {}
    pending: list[_Row] = []
    for row in rows:
        if row.verifies_at(row.seq):
            placed[row.seq] = row.seq
            origin_of_hash.setdefault(row.hash, row.seq)
        else:
            pending.append(row)
    budget = _SEARCH_BUDGET
    while pending:
        stuck = []
        for row in pending:
            if row.prev_hash == GENESIS:
                guess = 1
            elif isinstance(row.prev_hash, str) and row.prev_hash in origin_of_hash:
                guess = origin_of_hash[row.prev_hash] + 1
            else:
                stuck.append(row)
                continue
            placed[row.seq] = guess if row.verifies_at(guess) else None
            if placed[row.seq] is not None:
                origin_of_hash.setdefault(row.hash, guess)
        if len(stuck) == len(pending):
            row = stuck.pop(0)
            placed[row.seq] = None
            for guess in _nearby(row.seq, upper) if isinstance(row.hash, str) else ():
                budget -= 1
                if budget < 0:
                    break
                if row.verifies_at(guess):
                    placed[row.seq] = guess
                    origin_of_hash.setdefault(row.hash, guess)
                    break
        pending = stuck
    return placed


def _rows(first: int, last: int) -> str:
    return f"row {first} was" if first == last else f"rows {first} to {last} were"


def _removed(first: int, last: int) -> ChainProblem:
    skip = f"skips from row {first - 1} to" if first > 1 else "starts at"
    return ChainProblem(
        first, "removed", f"{_rows(first, last)} removed: the chain {skip} row {last + 1}"
    )


def _truncated(first: int, head: int) -> ChainProblem:
    end = f"the log ends at row {first - 1}" if first > 1 else "the log is empty"
    return ChainProblem(
        first,
        "truncated",
        f"{_rows(first, head)} removed from the end of the log: the head anchor records "
        f"row {head} but {end}",
    )


def _check(
    rows: list[_Row], head: _Head | None, head_note: str | None, head_name: str
) -> list[ChainProblem]:
    upper = max([row.seq for row in rows] + [head.seq if head else 0]) + 1
    placed = _place_rows(rows, upper)
    found: dict[int, ChainProblem] = {}  # by row seq: at most one problem per row
    carrier: dict[int, _Row] = {}  # original seq -> the row that holds that entry now

    def flag(row: _Row, kind: str, what: str) -> None:
        found[row.seq] = ChainProblem(row.seq, kind, f"row {row.seq} ({row.label}) {what}")

    overwritten: list[_Row] = []
    for row in rows:
        if placed[row.seq] == row.seq:
            carrier[row.seq] = row
    for row in rows:
        origin = placed[row.seq]
        if origin is None or origin == row.seq:
            continue
        if origin in carrier:
            flag(row, "edited", f"was overwritten with a copy of row {carrier[origin].seq}")
            overwritten.append(row)
        else:
            carrier[origin] = row
            flag(row, "reordered", f"is out of order: it holds the entry written as row {origin}")
    for row in rows:
        if placed[row.seq] is None:
            flag(row, "edited", "was edited: its hash does not match its content")
            overwritten.append(row)
    for row in overwritten:  # it still stands for the entry once written at its seq
        carrier.setdefault(row.seq, row)

    def edited(row: _Row) -> bool:
        return row.seq in found and found[row.seq].kind == "edited"

    for row in rows:
        invalid = None if row.seq in found else _invalid_content(row)
        if invalid:
            flag(row, "edited", f"holds invalid data: {invalid}")
    # A row whose hash was recomputed after an edit verifies on its own; only the link to
    # its neighbour (or the head anchor, for the newest row) shows it.
    for origin in sorted(carrier):
        row = carrier[origin]
        before = carrier.get(origin - 1)
        if row.seq in found or (before is not None and edited(before)):
            continue
        if origin == 1 and row.prev_hash != GENESIS:
            flag(row, "edited", "was forged: it starts the chain but its prev_hash is not zeros")
        elif before is not None and row.prev_hash != before.hash:
            flag(
                row,
                "edited",
                f"does not follow row {before.seq}: its prev_hash is not row {before.seq}'s "
                "hash, so one of the two was rewritten with a recomputed hash",
            )
    anchored = carrier.get(head.seq) if head else None
    if head and anchored and anchored.seq not in found and anchored.hash != head.hash:
        flag(anchored, "edited", "does not match the head anchor: it was replaced after writing")

    problems = list(found.values())
    previous = 0
    for origin in sorted(carrier):
        if origin > previous + 1:
            problems.append(_removed(previous + 1, origin - 1))
        previous = origin
    if head is not None and head.seq > previous:
        problems.append(_truncated(previous + 1, head.seq))
    if head is None and rows:
        state = f"is unreadable ({head_note})" if head_note else "is missing"
        problems.append(
            ChainProblem(
                rows[-1].seq,
                "head_missing",
                f"the head anchor {head_name} {state}, so rows removed from the end of the "
                "log cannot be detected",
            )
        )
    return sorted(problems, key=lambda p: (p.seq, p.kind))


# -- the log -------------------------------------------------------------------------------


def _lock_for(path: Path) -> threading.RLock:
    # One lock per file, shared by every AuditLog on it in this process, so two instances
    # cannot interleave their commits and head writes.
    key = path.resolve()
    with _locks_guard:
        return _locks.setdefault(key, threading.RLock())


def _unavailable(path: Path, exc: BaseException) -> PowerXError:
    return PowerXError(
        "audit_unavailable",
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
        self.head_path = _head_path(path)
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
            raise PowerXError("audit_closed", f"The audit log {self.path} is closed.", status=500)
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
                "audit_readonly", f"The audit log {self.path} was opened read-only.", status=500
            )
        if not action:
            raise ValueError("an audit entry needs an action")
        when = time.time() if ts is None else float(ts)
        if not math.isfinite(when):
            raise ValueError(f"an audit entry needs a finite ts, not {ts!r}")
        text = _canonical(dict(details or {}))
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    last_seq, last_hash = self._chain_end(conn)
                    fields = (last_seq + 1, when, action, plugin, actor, ref, text, last_hash)
                    digest = _digest(fields)
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
                    "audit_write_failed",
                    f"Could not append to the audit log {self.path}: {exc}.",
                    "check that the state folder is writable and the disk is not full.",
                    status=500,
                ) from exc
            self._move_head(last_seq + 1, digest)
        return AuditRecord(
            last_seq + 1, when, action, plugin, actor, ref, _details(text), last_hash, digest
        )

    def _chain_end(self, conn: sqlite3.Connection) -> tuple[int, str]:
        """Where the next entry links: the last row, unless the head anchor is at or past
        it. Then rows were cut or replaced at the end, and linking to the anchor keeps
        that visible to verify() after further appends."""
        last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq, digest = (int(last[0]), _text(last[1])) if last else (0, GENESIS)
        head, _ = _read_head(self.head_path)
        if head is not None and head.seq >= seq:
            return head.seq, head.hash
        return seq, digest

    def _move_head(self, seq: int, digest: str) -> None:
        try:
            _write_head(self.head_path, seq, digest)
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
        head, note = _read_head(self.head_path)
        if last is None or (head is not None and head.seq >= last[0]):
            return
        seq, expected = (head.seq, head.hash) if head else (0, GENESIS)
        if head is not None:
            anchor = conn.execute("SELECT hash FROM audit WHERE seq = ?", (head.seq,)).fetchone()
            if anchor is None or anchor[0] != head.hash:
                return
        sql = f"SELECT {_COLUMNS} FROM audit WHERE seq > ? ORDER BY seq"
        for raw in conn.execute(sql, (seq,)).fetchall():
            row = _Row.of(raw)
            if row.seq != seq + 1 or row.prev_hash != expected or not row.verifies_at(row.seq):
                return
            seq, expected = row.seq, _text(row.hash)
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
            head, note = _read_head(self.head_path)
            raw = self._query(f"SELECT {_COLUMNS} FROM audit ORDER BY seq")
        rows = [_Row.of(row) for row in raw]
        problems = _check(rows, head, note, self.head_path.name)
        ok = all(problem.kind in _WARNING_KINDS for problem in problems)
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
            "audit_missing",
            f"No audit log at {path}.",
            "start the simulator in this folder (`powerx host start --mock PATH`), or set "
            "POWERX_STATE_DIR to the folder that holds it.",
            status=404,
        )
    log = AuditLog.__new__(AuditLog)
    log._open(path, readonly=True)
    return log
