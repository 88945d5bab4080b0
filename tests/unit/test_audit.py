"""The audit chain on real SQLite files: tampering of every kind is named by row."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path

import pytest

from powerx.errors import PowerXError
from powerx.observe.audit import GENESIS, AuditLog, ChainProblem, Verification, open_readonly

FIELDS = "ts, action, plugin, actor, ref, details, prev_hash, hash"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "audit.db"


def fill(path: Path, count: int = 10) -> None:
    with AuditLog(path) as log:
        for i in range(1, count + 1):
            log.append("reload.ok", f"com.example.p{i}", {"generation": i}, ref=f"r{i}")


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A separate connection, as someone tampering with the file would use."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def row(conn: sqlite3.Connection, seq: int) -> tuple[object, ...]:
    return tuple(conn.execute(f"SELECT {FIELDS} FROM audit WHERE seq = ?", (seq,)).fetchone())


def put(conn: sqlite3.Connection, seq: int, values: tuple[object, ...]) -> None:
    sets = ", ".join(f"{name} = ?" for name in FIELDS.split(", "))
    conn.execute(f"UPDATE audit SET {sets} WHERE seq = ?", (*values, seq))


def sha(seq: int, values: tuple[object, ...]) -> str:
    """The documented hash: sha256 of compact JSON [seq, ts, ..., details, prev_hash]."""
    text = json.dumps([seq, *values[:7]], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def problems(path: Path) -> list[ChainProblem]:
    with open_readonly(path) as log:
        return log.verify().problems


def head(path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(path.with_name(path.name + ".head").read_text())
    return data


def test_chain_verifies_after_appends(db: Path) -> None:
    fill(db, 10)
    with AuditLog(db) as log:
        result = log.verify()
        records = log.records()
    assert result.ok and result.checked == 10 and result.problems == []
    assert [r.seq for r in records] == list(range(1, 11))
    assert records[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in pairwise(records))
    assert head(db) == {"seq": 10, "hash": records[-1].hash}


def test_hash_is_sha256_of_canonical_fields_and_details_are_canonical_json(db: Path) -> None:
    with AuditLog(db) as log:
        record = log.append("debugger.attach", "com.example.x", {"b": 1, "a": [1, 2]}, ts=5.0)
    with raw(db) as conn:
        stored = row(conn, 1)
    assert stored[5] == '{"a":[1,2],"b":1}'
    assert stored[7] == sha(1, stored) == record.hash
    assert record.details == {"a": [1, 2], "b": 1}
    assert record.actor == "developer" and record.ts == 5.0


def test_journal_mode_is_wal(db: Path) -> None:
    fill(db, 1)
    with raw(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_empty_log_verifies(db: Path) -> None:
    with AuditLog(db) as log:
        assert log.verify() == Verification(ok=True, checked=0, problems=[])


def test_editing_details_is_reported_as_edited_naming_the_row(db: Path) -> None:
    fill(db, 10)
    with raw(db) as conn:
        conn.execute("""UPDATE audit SET details = '{"generation":99}' WHERE seq = 7""")
    found = problems(db)
    assert [(p.seq, p.kind) for p in found] == [(7, "edited")]
    assert "row 7 (reload.ok com.example.p7) was edited" in found[0].message


def test_deleting_a_middle_row_is_reported_as_removed(db: Path) -> None:
    fill(db, 10)
    with raw(db) as conn:
        conn.execute("DELETE FROM audit WHERE seq = 5")
    found = problems(db)
    assert [(p.seq, p.kind) for p in found] == [(5, "removed")]
    assert "row 5 was removed" in found[0].message


def test_swapping_the_contents_of_two_rows_is_reported_as_reordered(db: Path) -> None:
    fill(db, 10)
    with raw(db) as conn:
        third, sixth = row(conn, 3), row(conn, 6)
        put(conn, 3, sixth)
        put(conn, 6, third)
    found = problems(db)
    assert [(p.seq, p.kind) for p in found] == [(3, "reordered"), (6, "reordered")]
    assert "written as row 6" in found[0].message and "written as row 3" in found[1].message


def test_swapping_seq_values_of_adjacent_rows_is_reported_as_reordered(db: Path) -> None:
    fill(db, 10)
    with raw(db) as conn:
        conn.execute("UPDATE audit SET seq = -1 WHERE seq = 4")
        conn.execute("UPDATE audit SET seq = 4 WHERE seq = 5")
        conn.execute("UPDATE audit SET seq = 5 WHERE seq = -1")
    assert [(p.seq, p.kind) for p in problems(db)] == [(4, "reordered"), (5, "reordered")]


def test_deleting_a_row_and_renumbering_the_rest_is_reported_as_removed(db: Path) -> None:
    fill(db, 6)
    with raw(db) as conn:
        conn.execute("DELETE FROM audit WHERE seq = 3")
        for seq in (4, 5, 6):
            conn.execute("UPDATE audit SET seq = ? WHERE seq = ?", (seq - 1, seq))
    found = problems(db)
    assert (3, "removed") in [(p.seq, p.kind) for p in found]
    assert all(p.kind in {"removed", "reordered"} for p in found)


def test_deleting_the_newest_row_is_reported_as_truncated(db: Path) -> None:
    fill(db, 10)
    with raw(db) as conn:
        conn.execute("DELETE FROM audit WHERE seq >= 9")
    found = problems(db)
    assert [(p.seq, p.kind) for p in found] == [(9, "truncated")]
    assert "head anchor records row 10 but the log ends at row 8" in found[0].message


def test_appending_after_a_truncation_keeps_the_cut_visible(db: Path) -> None:
    fill(db, 5)
    with raw(db) as conn:
        conn.execute("DELETE FROM audit WHERE seq = 5")
    with AuditLog(db) as log:
        assert log.append("host.start").seq == 6
        result = log.verify()
    assert not result.ok
    assert [(p.seq, p.kind) for p in result.problems] == [(5, "removed")]


def test_forged_row_with_recomputed_hash_but_wrong_prev_hash_is_reported(db: Path) -> None:
    fill(db, 10)
    with raw(db) as conn:
        forged = list(row(conn, 5))
        forged[1] = "breakpoint.clear"
        forged[6] = row(conn, 3)[7]  # links to row 3, as if row 4 never existed
        forged[7] = sha(5, tuple(forged))
        put(conn, 5, tuple(forged))
    found = problems(db)
    assert [(p.seq, p.kind) for p in found] == [(5, "edited")]
    assert "does not follow row 4" in found[0].message


def test_edit_with_recomputed_hash_is_caught_by_the_next_rows_link(db: Path) -> None:
    fill(db, 10)
    with raw(db) as conn:
        forged = list(row(conn, 5))
        forged[5] = '{"generation":42}'
        forged[7] = sha(5, tuple(forged))
        put(conn, 5, tuple(forged))
    found = problems(db)
    assert [(p.seq, p.kind) for p in found] == [(6, "edited")]
    assert "row 5" in found[0].message


def test_edit_of_the_newest_row_with_recomputed_hash_is_caught_by_the_head(db: Path) -> None:
    fill(db, 4)
    with raw(db) as conn:
        forged = list(row(conn, 4))
        forged[5] = "{}"
        forged[7] = sha(4, tuple(forged))
        put(conn, 4, tuple(forged))
    found = problems(db)
    assert [(p.seq, p.kind) for p in found] == [(4, "edited")]
    assert "head anchor" in found[0].message


def test_rows_edited_into_nonsense_are_reported_not_raised(db: Path) -> None:
    fill(db, 5)
    with raw(db) as conn:
        conn.execute("UPDATE audit SET details = 'not json' WHERE seq = 2")
        conn.execute("UPDATE audit SET ts = 'yesterday', action = X'00FF' WHERE seq = 3")
        conn.execute("UPDATE audit SET prev_hash = 'x' WHERE seq = 4")
    with open_readonly(db) as log:
        result = log.verify()
        records = log.records()
    assert not result.ok
    assert [(p.seq, p.kind) for p in result.problems] == [
        (2, "edited"),
        (3, "edited"),
        (4, "edited"),
    ]
    assert records[1].details == {"invalid_details": "not json"}
    assert records[2].ts == 0.0


def test_a_forged_row_with_nonsense_details_and_a_valid_hash_is_reported(db: Path) -> None:
    fill(db, 5)
    with raw(db) as conn:
        forged = list(row(conn, 3))
        forged[5] = "oops"
        forged[7] = sha(3, tuple(forged))
        put(conn, 3, tuple(forged))
    found = problems(db)
    assert [(p.seq, p.kind) for p in found] == [(3, "edited")]
    assert "details are not a JSON object" in found[0].message


def test_a_missing_head_is_a_warning_for_readers(db: Path) -> None:
    fill(db, 5)
    db.with_name("audit.db.head").unlink()
    with open_readonly(db) as log:
        result = log.verify()
    assert result.ok
    assert [(p.seq, p.kind) for p in result.problems] == [(5, "head_missing")]


def test_reopening_the_log_continues_the_chain(db: Path) -> None:
    fill(db, 3)
    with AuditLog(db) as log:
        record = log.append("host.stop", actor="simulator")
        previous = log.records()[-2]
        assert log.verify().ok
    assert record.seq == 4 and record.prev_hash == previous.hash


def test_records_filter_by_plugin_action_and_since_seq(db: Path) -> None:
    with AuditLog(db) as log:
        log.append("host.start")
        log.append("reload.ok", "com.example.a")
        log.append("reload.failed", "com.example.a", {"reason": "syntax"})
        log.append("reload.ok", "com.example.b")
        log.append("permission.denied", "com.example.a", {"scope": "net"})
        assert [r.seq for r in log.records(plugin="com.example.a")] == [2, 3, 5]
        assert [r.seq for r in log.records(action="reload.ok")] == [2, 4]
        assert [r.seq for r in log.records(plugin="com.example.a", action="reload.ok")] == [2]
        assert [r.seq for r in log.records(since_seq=3)] == [4, 5]
        assert log.records(plugin="nobody") == []


def test_records_limit_returns_the_newest_rows_in_ascending_order(db: Path) -> None:
    fill(db, 10)
    with open_readonly(db) as log:
        assert [r.seq for r in log.records(limit=3)] == [8, 9, 10]
        assert [r.seq for r in log.records(since_seq=2, limit=20)] == list(range(3, 11))
        assert log.records(limit=0) == []


def test_open_readonly_raises_audit_missing_for_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PowerXError) as caught:
        open_readonly(tmp_path / "nowhere" / "audit.db")
    assert caught.value.code == "audit_missing" and caught.value.fix


def test_open_readonly_reads_while_the_writer_has_the_log_open(db: Path) -> None:
    with AuditLog(db) as writer:
        writer.append("host.start")
        with open_readonly(db) as reader:
            writer.append("debugger.attach", "com.example.x")
            assert [r.action for r in reader.records()] == ["host.start", "debugger.attach"]
            assert reader.verify().ok
            with pytest.raises(PowerXError) as caught:
                reader.append("host.stop")
            assert caught.value.code == "audit_readonly"


def test_another_process_reads_while_the_writer_runs(db: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from powerx.observe.audit import open_readonly\n"
        "log = open_readonly(Path(sys.argv[1])); v = log.verify()\n"
        "print(len(log.records()), v.ok, len(v.problems))"
    )
    with AuditLog(db) as writer:
        for _ in range(3):
            writer.append("breakpoint.set", "com.example.x", {"line": 3})
        out = subprocess.run(
            [sys.executable, "-c", script, str(db)], capture_output=True, text=True, check=True
        )
        writer.append("host.stop")
    assert out.stdout.split() == ["3", "True", "0"]


def test_crash_between_commit_and_head_write_is_repaired_on_open(db: Path) -> None:
    fill(db, 5)
    with AuditLog(db) as log:
        fourth = log.records()[3]
    head_file = db.with_name("audit.db.head")
    head_file.write_text(json.dumps({"seq": 4, "hash": fourth.hash}))  # rewound by one
    AuditLog(db).close()
    assert head(db)["seq"] == 5
    with open_readonly(db) as log:
        assert log.verify().problems == []


def test_crash_before_the_first_head_write_is_repaired_on_open(db: Path) -> None:
    fill(db, 1)
    db.with_name("audit.db.head").unlink()
    with AuditLog(db) as log:
        assert head(db)["seq"] == 1
        assert log.verify().problems == []


def test_a_head_behind_rows_that_do_not_chain_onto_it_is_not_repaired(db: Path) -> None:
    fill(db, 5)
    with AuditLog(db) as log:
        third = log.records()[2]
    db.with_name("audit.db.head").write_text(json.dumps({"seq": 3, "hash": third.hash}))
    with raw(db) as conn:
        conn.execute("UPDATE audit SET details = '{}' WHERE seq = 5")
    AuditLog(db).close()
    assert head(db)["seq"] == 3
    assert [(p.seq, p.kind) for p in problems(db)] == [(5, "edited")]


def test_four_threads_appending_fifty_entries_each_form_one_chain(db: Path) -> None:
    with AuditLog(db) as log:

        def work(worker: int) -> None:
            for i in range(50):
                log.append("breakpoint.set", f"com.example.t{worker}", {"i": i})

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        result = log.verify()
        assert [r.seq for r in log.records()] == list(range(1, 201))
    assert result.ok and result.checked == 200 and result.problems == []
    assert head(db)["seq"] == 200


def test_two_logs_on_one_file_in_one_process_share_one_chain(db: Path) -> None:
    with AuditLog(db) as first, AuditLog(db) as second:
        for i in range(5):
            (first if i % 2 else second).append("host.reload", ref=str(i))
        assert first.verify() == second.verify()
        assert first.verify().ok and first.verify().checked == 5


def test_a_closed_log_refuses_work(db: Path) -> None:
    log = AuditLog(db)
    log.close()
    log.close()
    with pytest.raises(PowerXError) as caught:
        log.append("host.start")
    assert caught.value.code == "audit_closed"


def test_a_file_that_is_not_an_audit_log_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(PowerXError) as caught:
        open_readonly(path)
    assert caught.value.code == "audit_unavailable"
