"""The audit log's hash chain, apart from its storage: how a row is hashed, the head
anchor that marks the chain's end, and the check that names every edited, removed,
reordered or cut row (:func:`check_chain`, used by ``AuditLog.verify``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

GENESIS = "0" * 64
"""The ``prev_hash`` of the first row."""

# How many hashes the check may spend looking for the place of a row whose predecessor is
# gone (rows renumbered after a deletion); beyond it such rows are reported as edited.
_SEARCH_BUDGET = 200_000
WARNING_KINDS = frozenset({"head_missing"})


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


def canonical(value: object) -> str:
    """Sorted keys, no spaces; values JSON cannot hold become their ``str``."""
    return _CANONICAL(value)


def row_digest(fields: Sequence[object]) -> str | None:
    """SHA-256 hex of ``[seq, ts, action, plugin, actor, ref, details, prev_hash]`` as
    compact JSON; None when a row was edited into values JSON cannot express."""
    try:
        text = _STRICT(list(fields))
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def as_text(value: object) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def optional_text(value: object) -> str | None:
    return None if value is None else as_text(value)


def _parsed(value: object) -> object:
    try:
        return json.loads(value) if isinstance(value, str) else None
    except (ValueError, RecursionError):
        return None


def details_of(value: object) -> dict[str, object]:
    parsed = _parsed(value)
    return parsed if isinstance(parsed, dict) else {"invalid_details": as_text(value)}


# -- the head anchor -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Head:
    seq: int
    hash: str


def head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


def read_head(path: Path) -> tuple[_Head | None, str | None]:
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


def write_head(path: Path, seq: int, digest: str) -> None:
    # Temp file + fsync + rename: a crash leaves the old anchor or the new one, never a
    # torn file. The folder is not fsynced: a rename lost in a crash leaves the previous
    # anchor, one row behind the table, which opening the log repairs.
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(canonical({"seq": seq, "hash": digest}).encode())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


# -- checking the chain --------------------------------------------------------------------


@dataclass(slots=True)
class ChainRow:
    seq: int
    fields: tuple[object, ...]  # ts, action, plugin, actor, ref, details, prev_hash
    hash: object

    @classmethod
    def of(cls, raw: Sequence[object]) -> ChainRow:
        seq = raw[0]
        return cls(seq if isinstance(seq, int) else 0, tuple(raw[1:8]), raw[8])

    @property
    def prev_hash(self) -> object:
        return self.fields[6]

    @property
    def label(self) -> str:
        action, plugin = self.fields[1], self.fields[2]
        parts = [as_text(action)[:60]] + ([] if plugin is None else [as_text(plugin)[:60]])
        return " ".join(parts)

    def verifies_at(self, seq: int) -> bool:
        return isinstance(self.hash, str) and row_digest([seq, *self.fields]) == self.hash


def _invalid_content(row: ChainRow) -> str | None:
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


def _place_rows(rows: list[ChainRow], upper: int) -> dict[int, int | None]:
    """For each row, the seq its content was written at (where its hash verifies), or None
    when its content was changed. A moved row is placed by following its ``prev_hash``
    to the row written before it; only when that row is gone are seqs tried one by one."""
    placed: dict[int, int | None] = {}
    origin_of_hash: dict[object, int] = {}
    pending: list[ChainRow] = []
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


def check_chain(
    rows: list[ChainRow], head: _Head | None, head_note: str | None, head_name: str
) -> list[ChainProblem]:
    upper = max([row.seq for row in rows] + [head.seq if head else 0]) + 1
    placed = _place_rows(rows, upper)
    found: dict[int, ChainProblem] = {}  # by row seq: at most one problem per row
    carrier: dict[int, ChainRow] = {}  # original seq -> the row that holds that entry now

    def flag(row: ChainRow, kind: str, what: str) -> None:
        found[row.seq] = ChainProblem(row.seq, kind, f"row {row.seq} ({row.label}) {what}")

    overwritten: list[ChainRow] = []
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

    def edited(row: ChainRow) -> bool:
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
