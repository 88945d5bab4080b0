"""Fuzz the two parsers an upload meets: mutate valid plugin archives and valid manifests at
random and run each case through the admission path. An archive goes through
check_archive and, when accepted, through ArtefactStore.put and unpack and the manifest it
holds through parse_manifest; a manifest goes through parse_manifest. Every refusal must be
a PowerXError with a known code and a 4xx status; anything else (another exception type,
an unknown code, a case running past --case-timeout) is unexpected.

Mutation here is plain `random` (bit flips, header fields with a fixed checksum, injected
pax records, hostile entries, splices; for YAML, hostile values, tags, aliases, edits), a
method apart from the property tests in tests/unit/test_*_properties.py. Each case has its
own seed, so `--seed S --only N` replays case N alone. Prints the counts; exit 1 when
anything was unexpected.

Usage: python benchmarks/fuzz_parsers.py [--cases 5000] [--seed 1] [--only N] [--save DIR]
"""

from __future__ import annotations

import argparse
import io
import random
import shutil
import signal
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from powerx.bundling.pack import pack
from powerx.errors import PowerXError
from powerx.host.artefacts import ArtefactStore, check_archive, read_member
from powerx.manifest import MANIFEST_FILE, parse_manifest

ARCHIVE_CODES = {"unsafe_archive", "archive_too_large"}
MANIFEST_CODES = {"manifest_yaml", "manifest_invalid", "manifest_too_large"}

PYTHON_MANIFEST = """\
id: com.example.hello-python
name: Hello Python
version: 1.0.0
runtime: python3.11
entry: app.py:app
host:
  api: ">=2.3 <3"
permissions:
  - contacts:read
  - kv:write
egress: []
"""
NODE_MANIFEST = """\
id: com.example.hello-node
name: Hello Node
version: 2.1.0-beta.3+build.7
runtime: node18
entry: src/index.ts
host: {api: "^2.3 || ~3.0"}
permissions: [contacts:read]
egress: [api.example.com, "*.cdn.example.org:443"]
build:
  esbuild: {target: node18, format: esm, sourcemap: true, external: [left-pad]}
"""
COMMAND_MANIFEST = """\
# built by a command
id: org.acme.tools.report
name: "Report: weekly"
version: 0.0.1
runtime: node18
entry: dist/index.js
host:
  api: 2.x
build:
  command: npm run build
  output: dist/index.js
"""
MANIFESTS = [PYTHON_MANIFEST, NODE_MANIFEST, COMMAND_MANIFEST]


def _seed_archives() -> list[bytes]:
    """Valid archives of several shapes: the packer's own, folders, long and Unicode
    names (pax), GNU long names, ustar prefixes."""
    packed = [
        pack(
            [
                (MANIFEST_FILE, PYTHON_MANIFEST.encode()),
                ("app.py", b"from starlette.applications import Starlette\napp = Starlette()\n"),
                ("requirements.txt", b"starlette\n"),
            ]
        ),
        pack(
            [
                (MANIFEST_FILE, NODE_MANIFEST.encode()),
                ("src/index.ts", b"export default {}\n"),
                ("src/lib/util.ts", b"export const x = 1\n"),
                ("package.json", b'{"name": "hello-node"}\n'),
                ("src/" + "deep/" * 20 + "file.ts", b"//\n"),
                ("notes/\u00e9t\u00e9 \u65e5\u672c.md", "\u00e9t\u00e9".encode()),
            ]
        ),
    ]
    formats = []
    for fmt in (tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
            for name, content in [
                ("src", None),
                (MANIFEST_FILE, COMMAND_MANIFEST.encode()),
                ("src/" + "n" * 90 + "/" + "m" * 60 + ".js", b"module.exports = 1\n"),
                ("dist/index.js", b"x" * 700),
            ]:
                info = tarfile.TarInfo(name)
                info.mtime = 1_700_000_000
                if content is None:
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    archive.addfile(info)
                else:
                    info.size = len(content)
                    archive.addfile(info, io.BytesIO(content))
        formats.append(buffer.getvalue())
    return packed + formats


# -- archive mutations ---------------------------------------------------------------------

# Header fields: (start, end) in a 512-byte tar header.
FIELDS = {
    "name": (0, 100),
    "mode": (100, 108),
    "uid": (108, 116),
    "size": (124, 136),
    "mtime": (136, 148),
    "type": (156, 157),
    "linkname": (157, 257),
    "magic": (257, 265),
    "devmajor": (329, 337),
    "prefix": (345, 500),
}
HOSTILE_NAMES = [
    "../evil", "/etc/passwd", "a/../../b", "..", ".", "", "./", "//x", "\\evil", "C:evil",
    "x" * 99, "a/" * 49, "app.py/inner", "src", "powerx.plugin.yaml/", "a\x00b", " ", "~",
]  # fmt: skip
TYPES = b"0123456789gxLKSAVDMNZ\0 "
ENTRY_TYPES = [
    tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
    tarfile.BLKTYPE, tarfile.FIFOTYPE, tarfile.CONTTYPE, b"Z",
]  # fmt: skip
INTERESTING_NUMBERS = [0, 1, 511, 512, 513, 2**31, 2**33 - 1, 2**33, 2**63, 2**88 - 1, -1, -512]
PAX_KEYWORDS = [
    "path", "linkpath", "size", "mtime", "atime", "uid", "gid", "uname", "hdrcharset",
    "GNU.sparse.map", "GNU.sparse.size", "GNU.sparse.realsize", "GNU.sparse.major",
    "GNU.sparse.minor", "GNU.sparse.name", "GNU.sparse.offset", "GNU.sparse.numbytes",
    "comment", "SCHILY.xattr.user.x",
]  # fmt: skip
PAX_VALUES = [
    b"", b"0", b"1", b"-1", b"-1024", b"1e300", b"nan", b"inf", b"1" + b"0" * 30, b"0,0",
    b"a,b", b"1,2,3", b"../../x", b"/abs", b"a\x00b", b"\xff\xfe", b"BINARY", b"x" * 300,
    b"3.5", b"0x10", b"\n", b"=",
]  # fmt: skip


def _number_field(width: int, value: int) -> bytes:
    """A tar number: octal when it fits, else base-256 (as tarfile writes big values)."""
    if 0 <= value < 8 ** (width - 1):
        return b"%0*o\0" % (width - 1, value)
    sign = b"\xff" if value < 0 else b"\x80"
    return sign + (value % (1 << (8 * (width - 1)))).to_bytes(width - 1, "big")


def _fix_checksum(data: bytearray, start: int) -> None:
    header = data[start : start + 512]
    if len(header) < 512:
        return
    header[148:156] = b" " * 8
    data[start + 148 : start + 156] = b"%06o\0 " % sum(header)


def _header_offsets(data: bytes) -> list[int]:
    """Where headers start, found by a walk of our own: tarfile on mutated data is what we
    test, and can loop (a negative size) before the fix in check_archive."""
    offsets: list[int] = []
    at = 0
    while at + 512 <= len(data) and len(offsets) < 1000 and data[at : at + 512].strip(b"\0"):
        offsets.append(at)
        try:
            size = int(data[at + 124 : at + 136].strip(b"\0 ") or b"0", 8)
        except ValueError:
            break
        at += 512 + -(-size // 512) * 512
    return offsets or [0]


def _pax_header(records: list[tuple[str, bytes]]) -> bytes:
    body = b""
    for keyword, value in records:
        line = b" %s=%s\n" % (keyword.encode(), value)
        length = len(line) + 1
        while len(str(length)) + len(line) != length:
            length += 1
        body += str(length).encode() + line
    info = tarfile.TarInfo("PaxHeader")
    info.type = tarfile.XHDTYPE
    info.size = len(body)
    return info.tobuf(tarfile.USTAR_FORMAT) + body + b"\0" * (-len(body) % 512)


def flip_bits(rng: random.Random, data: bytes, seeds: list[bytes]) -> bytes:
    mutated = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        mutated[rng.randrange(len(mutated))] ^= 1 << rng.randrange(8)
    return bytes(mutated)


def overwrite_bytes(rng: random.Random, data: bytes, seeds: list[bytes]) -> bytes:
    mutated = bytearray(data)
    at = rng.randrange(len(mutated))
    chunk = bytes(rng.choice(b"\0\xff/.0123456789 \n") for _ in range(rng.randint(1, 16)))
    mutated[at : at + len(chunk)] = chunk
    return bytes(mutated)


def truncate(rng: random.Random, data: bytes, seeds: list[bytes]) -> bytes:
    if rng.random() < 0.5:
        return data[: rng.randrange(len(data))]
    return data[: rng.randrange(len(data) // 512 + 1) * 512]  # on a block boundary


def header_field(rng: random.Random, data: bytes, seeds: list[bytes]) -> bytes:
    """Set one header field to a hostile value and fix the checksum, so tarfile reads it."""
    mutated = bytearray(data)
    start = rng.choice(_header_offsets(data))
    name = rng.choice(list(FIELDS))
    begin, end = FIELDS[name]
    width = end - begin
    if name in {"mode", "uid", "size", "mtime", "devmajor"}:
        value = _number_field(width, rng.choice([*INTERESTING_NUMBERS, rng.randrange(10**6)]))
    elif name == "type":
        value = bytes([rng.choice(TYPES)])
    elif name == "magic":
        value = rng.choice([b"ustar\x0000", b"ustar  \0", b"\0" * 8, b"garbage!"])
    else:
        value = rng.choice(HOSTILE_NAMES).encode("utf-8", "surrogateescape")
    mutated[start + begin : start + end] = value[:width].ljust(width, b"\0")
    _fix_checksum(mutated, start)
    return bytes(mutated)


def inject_pax(rng: random.Random, data: bytes, seeds: list[bytes]) -> bytes:
    """Put an extended header with hostile records in front of a member."""
    records = [(rng.choice(PAX_KEYWORDS), rng.choice(PAX_VALUES)) for _ in range(rng.randint(1, 4))]
    at = rng.choice(_header_offsets(data))
    return data[:at] + _pax_header(records) + data[at:]


def _entries(data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
    entries = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        for member in archive.getmembers():
            handle = archive.extractfile(member) if member.isfile() else None
            entries.append((member, handle.read() if handle else b""))
    return entries


def hostile_entry(rng: random.Random, data: bytes, seeds: list[bytes]) -> bytes:
    """A seed's files plus one entry that must never be unpacked (or cannot be)."""
    entries = _entries(data if data in seeds else rng.choice(seeds))
    info = tarfile.TarInfo(rng.choice(HOSTILE_NAMES + [m.name for m, _ in entries]))
    info.type = rng.choice(ENTRY_TYPES)
    info.linkname = rng.choice(["../../etc/passwd", "/etc/shadow", "app.py", ".."])
    content = b"payload" if info.type == tarfile.REGTYPE else b""
    info.size = len(content)
    entries.insert(rng.randint(0, len(entries)), (info, content))
    buffer = io.BytesIO()
    fmt = rng.choice([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
        for member, body in entries:
            archive.addfile(member, io.BytesIO(body) if member.isfile() else None)
    return buffer.getvalue()


def splice(rng: random.Random, data: bytes, seeds: list[bytes]) -> bytes:
    other = rng.choice(seeds)
    cut = rng.randrange(len(data) // 512 + 1) * 512
    join = rng.randrange(len(other) // 512 + 1) * 512
    return data[:cut] + other[join:]


def repeat_blocks(rng: random.Random, data: bytes, seeds: list[bytes]) -> bytes:
    start = rng.randrange(max(1, len(data) // 512)) * 512
    block = data[start : start + 512 * rng.randint(1, 3)]
    return data[:start] + block * rng.randint(2, 50) + data[start:]


ARCHIVE_MUTATORS: dict[str, Callable[[random.Random, bytes, list[bytes]], bytes]] = {
    "flip_bits": flip_bits,
    "overwrite_bytes": overwrite_bytes,
    "truncate": truncate,
    "header_field": header_field,
    "inject_pax": inject_pax,
    "hostile_entry": hostile_entry,
    "splice": splice,
    "repeat_blocks": repeat_blocks,
}


# -- manifest mutations --------------------------------------------------------------------

YAML_PIECES = [
    ": ", "- ", "? ", "&a ", "*a", "!!str ", "!!binary ", "!!set ", "!!omap ", "<<: ", "{",
    "}", "[", "]", ", ", "\n", "  ", "\t", "'", '"', "|", ">-", "# c", "---\n", "...\n",
    "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "~", "\ufeff", "\0", "\x85", "\u2028", "\\",
]  # fmt: skip


def _alias_bomb(rng: random.Random) -> tuple[str, str]:
    """Billion laughs: the anchors' lines, and the alias that would expand them all."""
    fanout, levels = rng.randint(2, 12), rng.randint(2, 12)
    lines = [f"b0: &b0 [{', '.join(['lol'] * fanout)}]"]
    lines += [f"b{n}: &b{n} [{', '.join([f'*b{n - 1}'] * fanout)}]" for n in range(1, levels)]
    return "\n".join(lines) + "\n", f"*b{levels - 1}"


def hostile_value(rng: random.Random) -> str:
    depth = rng.choice([10, 200, 1000, 5000])
    return rng.choice(
        [
            "[" * depth + "]" * depth,
            "{a: " * depth + "1" + "}" * depth,
            "x" * rng.choice([100, 10_000, 70_000]),
            "1" * rng.choice([10, 4301, 6000]),
            "0x" + "f" * rng.choice([10, 5000]),
            "!!python/object/apply:os.system ['echo unsafe']",
            "!!python/name:os.system",
            "!!python/object/new:pathlib.Path ['/tmp']",
            "!!binary aGVsbG8=",
            "!!set {a, b}",
            "!!timestamp 2001-12-14t21:59:43.10-05:00",
            "!!float nan",
            "&r [*r]",
            "*undefined",
            "null",
            "[]",
            "{}",
            "-1",
            "2001-01-01",
            "'\\x00'",
            '"\\ud800"',
            "yes",
            "1.0.0-01",
            ">=2.3 <3 ||",
            "[contacts:read, 0x" + "f" * 5000 + "]",
        ]
    )


def replace_value(rng: random.Random, text: str) -> str:
    lines = text.splitlines()
    keyed = [n for n, line in enumerate(lines) if ":" in line and not line.startswith("#")]
    if not keyed:  # earlier mutations left no key: add one
        lines.append("name: x")
        keyed = [len(lines) - 1]
    n = rng.choice(keyed)
    key = lines[n].split(":", 1)[0]
    if rng.random() < 0.2:
        bomb, alias = _alias_bomb(rng)
        lines[n] = f"{key}: {alias}"
        return bomb + "\n".join(lines) + "\n"
    lines[n] = f"{key}: {hostile_value(rng)}"
    return "\n".join(lines) + "\n"


def insert_pieces(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(text) + 1)
        text = text[:at] + rng.choice(YAML_PIECES) + text[at:]
    return text


def edit_lines(rng: random.Random, text: str) -> str:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 4)):
        n = rng.randrange(len(lines))
        action = rng.choice(["delete", "duplicate", "swap", "indent", "dedent"])
        if action == "delete" and len(lines) > 1:
            del lines[n]
        elif action == "duplicate":
            lines.insert(n, lines[n])
        elif action == "swap":
            m = rng.randrange(len(lines))
            lines[n], lines[m] = lines[m], lines[n]
        elif action == "indent":
            lines[n] = " " * rng.randint(1, 4) + lines[n]
        else:
            lines[n] = lines[n].lstrip()
    return "\n".join(lines) + "\n"


def flip_chars(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(chars))
        chars[at] = chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x10FFFF)]))
        if 0xD800 <= ord(chars[at]) < 0xE000:
            chars[at] = "\ufffd"
    return "".join(chars)


def deep_structure(rng: random.Random, text: str) -> str:
    depth = rng.choice([20, 50, 200, 500, 2000])  # PyYAML scans deep flow nesting slowly
    nested = "".join("  " * n + "- \n" for n in range(min(depth, 300)))
    return text + rng.choice([f"extra:\n{nested}", "extra: " + "[" * depth + "]" * depth])


def truncate_text(rng: random.Random, text: str) -> str:
    return text[: rng.randrange(len(text) + 1)]


def join_documents(rng: random.Random, text: str) -> str:
    return text + rng.choice(["---\n", "...\n", "\n"]) + rng.choice(MANIFESTS)


MANIFEST_MUTATORS: dict[str, Callable[[random.Random, str], str]] = {
    "replace_value": replace_value,
    "insert_pieces": insert_pieces,
    "edit_lines": edit_lines,
    "flip_chars": flip_chars,
    "deep_structure": deep_structure,
    "truncate_text": truncate_text,
    "join_documents": join_documents,
}


# -- running cases -------------------------------------------------------------------------


class CaseTimeout(Exception):
    """A case ran longer than --case-timeout."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise CaseTimeout in the case after ``seconds`` (SIGALRM; a no-op without it)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise CaseTimeout(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Unexpected:
    case: int
    parser: str
    mutation: str
    error: str
    sample: bytes


@dataclass
class Tally:
    cases: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    codes: Counter[tuple[str, str]] = field(default_factory=Counter)
    mutations: Counter[str] = field(default_factory=Counter)
    slowest: dict[str, float] = field(default_factory=dict)
    unpacked: int = 0
    manifests_in_archives: Counter[str] = field(default_factory=Counter)
    unexpected: list[Unexpected] = field(default_factory=list)


def _refusal(error: PowerXError, codes: set[str]) -> str | None:
    """Why a PowerXError breaks the contract, or None when it keeps it."""
    if error.code not in codes:
        return f"unknown code {error.code!r}"
    if not 400 <= error.status < 500:
        return f"status {error.status} for {error.code}"
    return None


def _admit_and_unpack(data: bytes, work: Path, tally: Tally) -> None:
    """What the simulator does with an archive check_archive accepted."""
    raw = read_member(data, MANIFEST_FILE)
    if raw is not None:
        try:
            parse_manifest(raw.decode("utf-8", errors="replace"))
            tally.manifests_in_archives["accepted"] += 1
        except PowerXError as error:
            problem = _refusal(error, MANIFEST_CODES)
            if problem:
                raise AssertionError(f"manifest in archive: {problem}") from None
            tally.manifests_in_archives[error.code] += 1
    store = ArtefactStore(Path(tempfile.mkdtemp(dir=work)))
    try:
        store.unpack(store.put(data))
        tally.unpacked += 1
    finally:
        shutil.rmtree(store.root, ignore_errors=True)


def run_case(
    index: int, seed: int, seeds: list[bytes], work: Path, tally: Tally, limit: float
) -> None:
    rng = random.Random(f"{seed}-{index}")
    parser = "check_archive" if rng.random() < 0.5 else "parse_manifest"
    sample: bytes
    if parser == "check_archive":
        names = rng.choices(list(ARCHIVE_MUTATORS), k=rng.choice([1, 1, 1, 2, 3]))
        data = rng.choice(seeds)
        for name in names:
            data = ARCHIVE_MUTATORS[name](rng, data, seeds) if data else data
        sample = data
    else:
        names = rng.choices(list(MANIFEST_MUTATORS), k=rng.choice([1, 1, 2, 3]))
        text = rng.choice(MANIFESTS)
        for name in names:
            text = MANIFEST_MUTATORS[name](rng, text) if text.strip() else text
        sample = text.encode("utf-8", "surrogatepass")
    mutation = "+".join(names)
    tally.cases[parser] += 1
    for name in set(names):
        tally.mutations[name] += 1
    started = time.perf_counter()
    try:
        with time_limit(limit):
            if parser == "check_archive":
                try:
                    check_archive(sample)
                except PowerXError as error:
                    problem = _refusal(error, ARCHIVE_CODES)
                    if problem:
                        raise AssertionError(problem) from None
                    tally.codes[(parser, error.code)] += 1
                else:
                    tally.accepted[parser] += 1
                    _admit_and_unpack(sample, work, tally)
            else:
                try:
                    parse_manifest(text)
                except PowerXError as error:
                    problem = _refusal(error, MANIFEST_CODES)
                    if problem:
                        raise AssertionError(problem) from None
                    tally.codes[(parser, error.code)] += 1
                else:
                    tally.accepted[parser] += 1
    except Exception as exc:  # anything but a well-formed PowerXError is a finding
        tally.unexpected.append(
            Unexpected(index, parser, mutation, f"{type(exc).__name__}: {exc}"[:200], sample)
        )
    elapsed = time.perf_counter() - started
    tally.slowest[parser] = max(tally.slowest.get(parser, 0.0), elapsed)


def report(tally: Tally, total: int, seed: int, elapsed: float) -> str:
    lines = [f"fuzz_parsers: {total} cases, seed {seed}, {elapsed:.1f} s", ""]
    lines.append(
        f"{'parser':<16}{'cases':>8}{'accepted':>10}{'rejected':>10}{'unexpected':>12}"
        f"{'slowest':>12}"
    )
    for parser in ("check_archive", "parse_manifest"):
        rejected = sum(n for (p, _), n in tally.codes.items() if p == parser)
        unexpected = sum(1 for u in tally.unexpected if u.parser == parser)
        lines.append(
            f"{parser:<16}{tally.cases[parser]:>8}{tally.accepted[parser]:>10}{rejected:>10}"
            f"{unexpected:>12}{tally.slowest.get(parser, 0.0) * 1000:>9.1f} ms"
        )
    lines += ["", "rejected by error code"]
    for (parser, code), count in sorted(tally.codes.items()):
        lines.append(f"  {parser:<16}{code:<22}{count:>8}")
    lines += [
        "",
        f"accepted archives put and unpacked: {tally.unpacked}; their manifests: "
        + ", ".join(f"{k} {v}" for k, v in sorted(tally.manifests_in_archives.items())),
        "cases per mutation: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.mutations.items())),
        "",
        f"unexpected exceptions: {len(tally.unexpected)}",
    ]
    for item in tally.unexpected[:20]:
        lines.append(f"  case {item.case} {item.parser} [{item.mutation}]: {item.error}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=5000, help="cases to run (default 5000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the run (default 1)")
    parser.add_argument("--only", type=int, default=None, help="run only this case number")
    parser.add_argument(
        "--case-timeout", type=float, default=10.0, help="seconds before a case is a hang"
    )
    parser.add_argument("--save", type=Path, default=None, help="write unexpected cases here")
    args = parser.parse_args()

    seeds = _seed_archives()
    for data in seeds:  # the seeds themselves must pass, or every mutation tests nothing
        check_archive(data)
    for text in MANIFESTS:
        parse_manifest(text)

    tally = Tally()
    indices = [args.only] if args.only is not None else range(args.cases)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="powerx-fuzz-") as work:
        for index in indices:
            run_case(index, args.seed, seeds, Path(work), tally, args.case_timeout)
    elapsed = time.perf_counter() - started
    print(report(tally, len(indices), args.seed, elapsed))
    if args.save is not None and tally.unexpected:
        args.save.mkdir(parents=True, exist_ok=True)
        for item in tally.unexpected:
            (args.save / f"case-{item.case}-{item.parser}.bin").write_bytes(item.sample)
        print(f"unexpected cases written to {args.save}")
    return 1 if tally.unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
