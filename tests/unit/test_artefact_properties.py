"""Property tests for the artefact parser: a hostile archive (escaping paths, links,
devices, bombs, malformed tar) is refused with a stable 4xx error before anything reaches
the store, and a safe one round-trips through the store byte for byte."""

from __future__ import annotations

import asyncio
import io
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powerx.bundling.pack import digest as sha256_of
from powerx.bundling.pack import pack
from powerx.config import SimulatorConfig
from powerx.errors import PowerXError
from powerx.host import artefacts
from powerx.host.artefacts import ArtefactStore, check_archive, read_member
from powerx.host.simulator import Simulator

Tree = dict[tuple[str, ...], bytes]
Entry = tuple[tarfile.TarInfo, bytes]

# No deadline: a wall-clock limit fails on a loaded machine, and speed is measured in
# benchmarks/fuzz_parsers.py, not asserted here.
PARSER = settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
STORE = settings(
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)

# -- building archives ---------------------------------------------------------------------


def _entry(
    name: str, content: bytes = b"", kind: bytes = tarfile.REGTYPE, linkname: str = ""
) -> Entry:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(content) if kind == tarfile.REGTYPE else 0
    info.linkname = linkname
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info, content


def _archive(entries: list[Entry]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info, content in entries:
            archive.addfile(info, io.BytesIO(content) if info.isfile() else None)
    return buffer.getvalue()


def _header(name: str, size_field: bytes, kind: bytes = tarfile.REGTYPE) -> bytes:
    """A GNU header with a raw 12-byte size field (octal, or base-256 for huge and
    negative sizes) and a correct checksum; no data follows."""
    info = tarfile.TarInfo(name)
    info.type = kind
    block = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    block[124:136] = size_field
    return _with_checksum(block, 0)


def _with_checksum(data: bytearray, start: int) -> bytes:
    """``data`` with the checksum of the header at ``start`` recomputed."""
    header = data[start : start + 512]
    header[148:156] = b" " * 8
    data[start + 148 : start + 156] = b"%06o\0 " % sum(header)
    return bytes(data)


def _base256(value: int) -> bytes:
    """A 12-byte base-256 size field (tarfile's encoding for sizes octal cannot hold)."""
    return (b"\xff" if value < 0 else b"\x80") + (value % (1 << 88)).to_bytes(11, "big")


def _pax_record(keyword: str, value: bytes) -> bytes:
    body = b" %s=%s\n" % (keyword.encode(), value)
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body


def _sparse_bomb(real_size: int) -> bytes:
    """A GNU sparse 1.0 file that declares ``real_size`` bytes and stores one block."""
    sparse_map = b"1\n0\n0\n".ljust(512, b"\0")
    info = tarfile.TarInfo("GNUSparseFile.0/bomb")
    info.size = len(sparse_map)
    info.pax_headers = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": "bomb",
        "GNU.sparse.realsize": str(real_size),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        archive.addfile(info, io.BytesIO(sparse_map))
    return buffer.getvalue()


def _refusal(data: bytes) -> PowerXError | None:
    """check_archive's verdict: None when accepted. Any other exception fails the test."""
    try:
        check_archive(data)
    except PowerXError as error:
        return error
    return None


def _assert_refused(error: PowerXError | None, code: str = "unsafe_archive") -> PowerXError:
    assert error is not None, "the archive was accepted"
    assert error.code == code, error.message
    assert 400 <= error.status < 500
    return error


def _files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# -- strategies ----------------------------------------------------------------------------

# Path segments: letters, digits, punctuation and symbols from all of Unicode, including
# names such as '...' or ' x' that look odd but are ordinary files. Never '/', '\' or ':'
# (separators, or a drive on Windows), never '.' or '..'.
_SEGMENT = st.text(
    st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs"), exclude_characters="/\\:"),
    min_size=1,
    max_size=10,
).filter(lambda s: s not in {".", ".."})


@st.composite
def safe_trees(draw: st.DrawFn) -> Tree:
    """Relative paths to contents; no path is both a file and a folder."""
    paths = draw(
        st.lists(
            st.lists(_SEGMENT, min_size=1, max_size=4).map(tuple),
            min_size=1,
            max_size=8,
            unique=True,
        )
    )
    files = [p for p in paths if not any(len(q) > len(p) and q[: len(p)] == p for q in paths)]
    return {path: draw(st.binary(max_size=2048)) for path in files}


@st.composite
def safe_entries(draw: st.DrawFn, tree: Tree) -> list[Entry]:
    """The tree as archive entries, in any order, with or without entries for its folders
    and with or without a './' prefix (as `tar -C dir .` writes)."""
    prefix = draw(st.sampled_from(["", "./"]))
    entries = [_entry(prefix + "/".join(path), content) for path, content in tree.items()]
    folders = {path[:n] for path in tree for n in range(1, len(path))}
    entries += [
        _entry(prefix + "/".join(folder), kind=tarfile.DIRTYPE)
        for folder in sorted(folders)
        if draw(st.booleans())
    ]
    if prefix and draw(st.booleans()):
        entries.append(_entry(".", kind=tarfile.DIRTYPE))
    return list(draw(st.permutations(entries)))


def _relative_path() -> st.SearchStrategy[str]:
    return st.lists(_SEGMENT, min_size=1, max_size=3).map("/".join)


def _outside_target() -> st.SearchStrategy[str]:
    """Where a link would point to leave the root: up with '..', or an absolute path."""
    return st.one_of(
        st.builds(lambda n, rest: "../" * n + rest, st.integers(1, 4), _relative_path()),
        st.builds(lambda rest: "/" + rest, _relative_path()),
        st.sampled_from(["/etc/passwd", "/", "..", "/root/.ssh/authorized_keys"]),
    )


@st.composite
def hostile_entries(draw: st.DrawFn) -> Entry:
    """One entry that must never be unpacked, whatever surrounds it."""
    kind = draw(st.sampled_from(["absolute", "dotdot", "symlink", "hardlink", "special"]))
    path = draw(_relative_path())
    if kind == "absolute":
        return _entry(draw(st.sampled_from(["/", "//", "\\"])) + path, b"x")
    if kind == "dotdot":
        parts = path.split("/")
        at = draw(st.integers(0, len(parts)))
        return _entry("/".join([*parts[:at], "..", *parts[at:]]), b"x")
    if kind in {"symlink", "hardlink"}:
        link = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
        return _entry(path, kind=link, linkname=draw(_outside_target()))
    device = draw(st.sampled_from([tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE]))
    return _entry(path, kind=device)


@st.composite
def valid_archives(draw: st.DrawFn) -> bytes:
    return _archive(draw(safe_entries(draw(safe_trees()))))


# -- safe archives -------------------------------------------------------------------------


@STORE
@given(tree=safe_trees(), data=st.data())
def test_safe_archives_are_accepted_and_unpack_to_the_same_files(
    tree: Tree, data: st.DataObject
) -> None:
    entries = data.draw(safe_entries(tree))
    archive = _archive(entries)
    assert len(check_archive(archive)) == len(entries)
    for info, content in entries:
        if info.isfile():
            assert read_member(archive, info.name) == content
    with tempfile.TemporaryDirectory() as tmp:
        store = ArtefactStore(Path(tmp))
        digest = store.put(archive)
        assert digest == sha256_of(archive) and store.read(digest) == archive
        root = store.unpack(digest)
        unpacked = {
            p.relative_to(root).parts: p.read_bytes() for p in root.rglob("*") if p.is_file()
        }
        assert unpacked == tree
        assert [p.name for p in store.unpacked.iterdir()] == [digest]  # no staging left


# -- hostile entries -----------------------------------------------------------------------


@STORE
@given(tree=safe_trees(), hostile=hostile_entries(), data=st.data())
def test_an_escaping_link_or_special_entry_anywhere_is_refused_before_the_store(
    tree: Tree, hostile: Entry, data: st.DataObject
) -> None:
    entries = data.draw(safe_entries(tree))
    at = data.draw(st.integers(0, len(entries)))
    archive = _archive([*entries[:at], hostile, *entries[at:]])
    error = _assert_refused(_refusal(archive))
    assert hostile[0].name in error.message
    with tempfile.TemporaryDirectory() as tmp:
        with pytest.raises(PowerXError) as refused:
            ArtefactStore(Path(tmp)).put(archive)
        assert refused.value.code == "unsafe_archive"
        assert _files_under(Path(tmp)) == []


@pytest.mark.parametrize(
    "entries",
    [
        [_entry("a", b"x"), _entry("a/b", b"y")],
        [_entry("a/b", b"y"), _entry("a", b"x")],
        [_entry("a", kind=tarfile.DIRTYPE), _entry("a", b"x")],
        [_entry("a", b"x"), _entry("a", kind=tarfile.DIRTYPE)],
        [_entry("a/./b", b"x"), _entry("a//b/c", b"y")],
        [_entry("", b"x")],
        [_entry(".", b"x")],
        [_entry("x" * 256, b"x")],
        [_entry("/".join(["d" * 200] * 6), b"x")],
    ],
    ids=[
        "file-then-child",
        "child-then-file",
        "folder-then-file",
        "file-then-folder",
        "same-path-spelt-twice",
        "empty-name",
        "file-at-root",
        "name-too-long",
        "path-too-long",
    ],
)
def test_entries_that_could_not_unpack_side_by_side_are_refused(entries: list[Entry]) -> None:
    archive = _archive(entries)
    _assert_refused(_refusal(archive))
    with tempfile.TemporaryDirectory() as tmp:
        with pytest.raises(PowerXError):
            ArtefactStore(Path(tmp)).put(archive)
        assert _files_under(Path(tmp)) == []


@pytest.mark.parametrize(
    "records",
    [
        [("mtime", b"1e300")],
        [("mtime", b"-1e30")],
        [("mtime", b"nan")],
        [("size", b"-1024")],
        [("size", b"1" + b"0" * 30)],
        [("path", b"a\0b")],
        [("hdrcharset", b"\xff\xfe")],
        [("GNU.sparse.map", b"a,b")],
        [("GNU.sparse.realsize", b"zz")],
        [("GNU.sparse.major", b"1"), ("GNU.sparse.minor", b"0")],
    ],
    ids=lambda records: "+".join(k for k, _ in records),
)
def test_hostile_pax_records_are_refused_not_raised(records: list[tuple[str, bytes]]) -> None:
    """Each of these once passed the check and then failed to unpack (time stamps, NUL),
    passed it with a negative size, or escaped it as a ValueError or OverflowError."""
    body = b"".join(_pax_record(keyword, value) for keyword, value in records)
    pax = tarfile.TarInfo("PaxHeader")
    pax.type = tarfile.XHDTYPE
    pax.size = len(body)
    file = tarfile.TarInfo("f")
    file.size = 1
    archive = (
        pax.tobuf(tarfile.USTAR_FORMAT)
        + body.ljust(-(-len(body) // 512) * 512, b"\0")
        + file.tobuf(tarfile.USTAR_FORMAT)
        + b"x".ljust(512, b"\0")
        + b"\0" * 1024
    )
    _assert_refused(_refusal(archive))


# -- bombs and caps ------------------------------------------------------------------------


@PARSER
@given(sizes=st.lists(st.integers(0, 64), min_size=1, max_size=12), cap=st.integers(0, 300))
def test_members_summing_over_the_unpacked_cap_are_refused(sizes: list[int], cap: int) -> None:
    archive = pack([(f"f{n}", b"x" * size) for n, size in enumerate(sizes)])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(artefacts, "MAX_UNPACKED_BYTES", cap)
        error = _refusal(archive)
    if sum(sizes) > cap:
        assert "unpacks to more than" in _assert_refused(error).message
    else:
        assert error is None


@PARSER
@given(count=st.integers(1, 40), cap=st.integers(1, 30))
def test_more_entries_than_the_cap_are_refused(count: int, cap: int) -> None:
    archive = pack([(f"f{n}", b"") for n in range(count)])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(artefacts, "MAX_MEMBERS", cap)
        error = _refusal(archive)
    if count > cap:
        assert "entries" in _assert_refused(error).message
    else:
        assert error is None


@PARSER
@given(extra=st.integers(1, 4096), cap=st.integers(0, 4096))
def test_an_archive_over_the_byte_cap_is_refused_with_413_before_it_is_read(
    extra: int, cap: int
) -> None:
    data = b"\0" * (cap + extra)  # not even a tar: the size is checked first
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(artefacts, "MAX_ARCHIVE_BYTES", cap)
        error = _assert_refused(_refusal(data), "archive_too_large")
        with tempfile.TemporaryDirectory() as tmp:
            with pytest.raises(PowerXError):
                ArtefactStore(Path(tmp)).put(data)
            assert _files_under(Path(tmp)) == []
    assert error.status == 413


@pytest.mark.parametrize(
    "bomb",
    [
        pytest.param(lambda: _sparse_bomb(1 << 40), id="sparse-1TiB-in-3-blocks"),
        pytest.param(lambda: _header("big", _base256(1 << 60)) + b"\0" * 1024, id="size-2^60"),
        pytest.param(
            lambda: _header("big", b"%011o\0" % (8**11 - 1)) + b"\0" * 1024, id="octal-max"
        ),
        pytest.param(
            lambda: _header("a", b"%011o\0" % 0) + _header("b", _base256(-512)) + b"\0" * 1024,
            id="negative-size-loops-back",
        ),
    ],
)
@pytest.mark.timeout(10)
def test_declared_huge_or_looping_members_are_refused_at_once(
    bomb: Callable[[], bytes],
) -> None:
    """None of these is bigger than a few KiB; all would unpack to terabytes or (the
    negative size, on this Python's tarfile) read the same header forever."""
    started = time.perf_counter()
    _assert_refused(_refusal(bomb()))
    assert time.perf_counter() - started < 1


# -- malformed input -----------------------------------------------------------------------


def _accepted_archive_unpacks(data: bytes) -> None:
    """What check_archive accepts, the store can also keep, read and unpack."""
    for member in check_archive(data):
        if member.isfile():
            assert read_member(data, member.name) is not None
    with tempfile.TemporaryDirectory() as tmp:
        store = ArtefactStore(Path(tmp))
        store.unpack(store.put(data))


@PARSER
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_are_refused_with_a_stable_code(data: bytes) -> None:
    error = _refusal(data)
    if error is not None:
        _assert_refused(error)


@STORE
@given(archive=valid_archives(), data=st.data())
def test_a_truncated_archive_is_refused_or_still_whole(archive: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(archive) - 1))
    if _refusal(archive[:cut]) is None:
        _accepted_archive_unpacks(archive[:cut])


@STORE
@given(
    archive=valid_archives(),
    flips=st.lists(st.tuples(st.integers(0), st.integers(0, 7)), min_size=1, max_size=8),
)
def test_bit_flips_anywhere_are_refused_or_unpack(
    archive: bytes, flips: list[tuple[int, int]]
) -> None:
    mutated = bytearray(archive)
    for position, bit in flips:
        mutated[position % len(mutated)] ^= 1 << bit
    if _refusal(bytes(mutated)) is None:
        _accepted_archive_unpacks(bytes(mutated))


@STORE
@given(
    archive=valid_archives(),
    data=st.data(),
    edits=st.lists(st.tuples(st.integers(0, 511), st.binary(min_size=1, max_size=12)), max_size=4),
)
def test_header_edits_with_a_valid_checksum_are_refused_or_unpack(
    archive: bytes, data: st.DataObject, edits: list[tuple[int, bytes]]
) -> None:
    """Edits that pass tarfile's checksum reach the fields themselves: sizes, types,
    names, link targets, the pax and GNU extension headers."""
    members = check_archive(archive)
    # A member's own header, and the pax header before it when it has one.
    headers = {m.offset for m in members} | {m.offset_data - 512 for m in members}
    start = data.draw(st.sampled_from(sorted(headers)))
    mutated = bytearray(archive)
    for offset, chunk in edits:
        end = min(offset + len(chunk), 512)
        mutated[start + offset : start + end] = chunk[: end - offset]
    mutated_bytes = _with_checksum(mutated, start)
    if _refusal(mutated_bytes) is None:
        _accepted_archive_unpacks(mutated_bytes)


def test_a_declared_digest_that_does_not_match_leaves_the_store_empty(tmp_path: Path) -> None:
    archive = pack([("powerx.plugin.yaml", b"id: com.example.x\n")])
    store = ArtefactStore(tmp_path)
    for declared in ("0" * 64, sha256_of(archive)[::-1], "", "not-hex"):
        with pytest.raises(PowerXError) as refused:
            store.put(archive, declared)
        assert refused.value.code == "digest_mismatch" and 400 <= refused.value.status < 500
    assert _files_under(tmp_path) == []
    assert store.put(archive, sha256_of(archive)) == sha256_of(archive)
    assert _files_under(tmp_path) == ["artefacts", f"artefacts/{sha256_of(archive)}"]


# -- through the simulator's upload path ---------------------------------------------------


def _alias_bomb(levels: int) -> bytes:
    """Billion laughs: each level lists the one before nine times; 'name' is the last."""
    lines = [b"l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for n in range(1, levels):
        lines.append(b"l%d: &l%d [%s]" % (n, n, b", ".join([b"*l%d" % (n - 1)] * 9)))
    lines.append(b"name: *l%d" % (levels - 1))
    return b"\n".join(lines) + b"\n"


def _hostile_uploads(canary: Path) -> dict[str, tuple[bytes, str]]:
    """Uploads the simulator must refuse, each with the code it must answer."""
    python_tag = b"id: !!python/object/apply:os.mkdir ['%s']\n" % str(canary).encode()
    return {
        "dotdot": (_archive([_entry("../evil", b"x")]), "unsafe_archive"),
        "absolute": (_archive([_entry("/etc/cron.d/evil", b"x")]), "unsafe_archive"),
        "symlink-out": (
            _archive([_entry("app.py", kind=tarfile.SYMTYPE, linkname="/etc/passwd")]),
            "unsafe_archive",
        ),
        "hardlink-out": (
            _archive([_entry("app.py", kind=tarfile.LNKTYPE, linkname="../../x")]),
            "unsafe_archive",
        ),
        "device": (_archive([_entry("tty", kind=tarfile.CHRTYPE)]), "unsafe_archive"),
        "fifo": (_archive([_entry("pipe", kind=tarfile.FIFOTYPE)]), "unsafe_archive"),
        "sparse-bomb": (_sparse_bomb(1 << 40), "unsafe_archive"),
        "negative-size": (
            _header("a", b"%011o\0" % 0) + _header("b", _base256(-512)) + b"\0" * 1024,
            "unsafe_archive",
        ),
        "file-and-folder": (_archive([_entry("a", b"x"), _entry("a/b", b"y")]), "unsafe_archive"),
        "not-a-tar": (b"PK\x03\x04 this is a zip", "unsafe_archive"),
        "empty": (b"", "unsafe_archive"),
        "no-manifest": (pack([("app.py", b"app = None\n")]), "manifest_missing"),
        "manifest-alias-bomb": (
            pack([("powerx.plugin.yaml", _alias_bomb(levels=9))]),
            "manifest_invalid",
        ),
        "manifest-python-tag": (pack([("powerx.plugin.yaml", python_tag)]), "manifest_yaml"),
    }


def test_refused_uploads_leave_the_store_untouched(tmp_path: Path) -> None:
    """Simulator.hot_reload is the upload path: admission (archive, then manifest) runs
    before ArtefactStore.put, so a refusal writes no artefact, run folder or pointer."""
    canary = tmp_path / "python-tag-ran"
    uploads = _hostile_uploads(canary)
    state = tmp_path / "state"

    async def upload_all() -> dict[str, PowerXError]:
        simulator = Simulator(SimulatorConfig(), state, "http://127.0.0.1:9")
        assert simulator.store.root == state
        refusals: dict[str, PowerXError] = {}
        try:
            for name, (data, _) in uploads.items():
                try:
                    await simulator.hot_reload(data, sha256_of(data), None, {}, time.perf_counter())
                except PowerXError as error:
                    refusals[name] = error
        finally:
            await simulator.stop()
        return refusals

    refusals = asyncio.run(upload_all())
    assert sorted(refusals) == sorted(uploads)
    for name, error in refusals.items():
        assert (error.code, 400 <= error.status < 500) == (uploads[name][1], True), name
    store = ArtefactStore(state)
    assert store.stored() == [] and store.plugins() == []
    assert not store.unpacked.exists() or _files_under(store.unpacked) == []
    assert not canary.exists()
