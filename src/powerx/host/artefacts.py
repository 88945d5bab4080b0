"""The content-addressed artefact store and the per-plugin active pointer.

Artefacts are written once under ``artefacts/<sha256>`` and never changed; each is
unpacked once under ``run/<plugin-id>/<sha256>/`` (one folder per plugin, so a plugin's
sandbox can be shown its own run trees and no other's). Which artefact serves a plugin
is recorded in ``plugins/<id>/active.json``, changed only by ``os.replace`` so that a crash at any
point leaves either the old or the new pointer, never a torn one.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from powerx.bundling.pack import digest as sha256_of
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError

_DIGEST = re.compile(r"[0-9a-f]{64}")
MAX_ARCHIVE_BYTES = 64 * 1024 * 1024
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
MAX_MEMBERS = 10_000
MAX_NAME_BYTES = 255  # one path component: NAME_MAX on Linux and macOS
MAX_PATH_BYTES = 1024  # a whole entry name, far inside PATH_MAX with the store's prefix


def _unsafe(message: str) -> PowerXError:
    return PowerXError(
        ErrorCode.UNSAFE_ARCHIVE,
        message,
        "pack the plugin with `powerx dev`/`host start`; archives must hold only "
        "regular files and folders with relative paths inside the root.",
        status=400,
    )


def check_archive(data: bytes) -> list[tarfile.TarInfo]:
    """Refuse archives that could escape the root or exhaust the disk; return the members.

    Entries are read and checked one at a time: a negative size in a header sends tarfile
    back to an earlier header (forever, on Pythons before 3.11.12), and the entry cap is
    what stops that loop.
    """
    if len(data) > MAX_ARCHIVE_BYTES:
        raise PowerXError(
            ErrorCode.ARCHIVE_TOO_LARGE,
            f"The archive is {len(data)} bytes; the cap is {MAX_ARCHIVE_BYTES}.",
            "leave node_modules and build caches out of the plugin folder.",
            status=413,
        )
    members: list[tarfile.TarInfo] = []
    files: set[PurePosixPath] = set()
    folders: set[PurePosixPath] = {PurePosixPath()}
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            while (member := archive.next()) is not None:
                members.append(member)
                if len(members) > MAX_MEMBERS:
                    raise _unsafe(f"The archive holds more than {MAX_MEMBERS} entries.")
                _check_entry(member, files, folders)
                total += member.size
                if total > MAX_UNPACKED_BYTES:
                    raise _unsafe(f"The archive unpacks to more than {MAX_UNPACKED_BYTES} bytes.")
    # tarfile's header parsing also lets out ValueError (bad sparse or pax numbers, a
    # non-UTF-8 hdrcharset) and OverflowError (an offset past any file).
    except (tarfile.TarError, EOFError, ValueError, OverflowError) as exc:
        raise _unsafe(f"The archive is not a readable tar ({exc}).") from None
    return members


def _check_entry(
    member: tarfile.TarInfo, files: set[PurePosixPath], folders: set[PurePosixPath]
) -> None:
    """Refuse one entry that could escape the root, or that could not be unpacked beside
    the entries before it (``files`` and ``folders`` seen so far, updated here)."""
    name = PurePosixPath(member.name)
    first = name.parts[0] if name.parts else ""
    if name.is_absolute() or member.name.startswith(("/", "\\")) or ":" in first:
        raise _unsafe(f"Archive entry '{member.name}' has an absolute path.")
    if ".." in name.parts:
        raise _unsafe(f"Archive entry '{member.name}' leaves the root with '..'.")
    if member.issym() or member.islnk():
        raise _unsafe(f"Archive entry '{member.name}' is a link; links are not allowed.")
    if not (member.isfile() or member.isdir()) or member.issparse():
        raise _unsafe(f"Archive entry '{member.name}' is a device, fifo or other special file.")
    if member.size < 0:
        raise _unsafe(f"Archive entry '{member.name}' declares a negative size.")
    if not 0 <= member.mtime < 2**33:  # ustar's range; unpacking fails far outside it
        raise _unsafe(f"Archive entry '{member.name}' has a timestamp out of range.")
    raw = os.fsencode(member.name)
    if (
        b"\0" in raw
        or len(raw) > MAX_PATH_BYTES
        or any(len(os.fsencode(part)) > MAX_NAME_BYTES for part in name.parts)
    ):
        raise _unsafe(f"Archive entry '{member.name[:80]}' has a name no file system accepts.")
    parents = set(name.parents)
    if (name in files if member.isdir() else name in folders) or parents & files:
        raise _unsafe(f"Archive entry '{member.name}' is both a file and a folder.")
    (folders if member.isdir() else files).add(name)
    folders |= parents


def member_data(data: bytes, members: list[tarfile.TarInfo], name: str) -> bytes | None:
    """One regular file of an archive ``check_archive`` accepted (``members`` is what it
    returned), read where its header says it is: no second parse of the archive on the
    reload path. As in tar, the last entry of a name wins."""
    for member in reversed(members):
        if member.name == name and member.isfile():
            return data[member.offset_data : member.offset_data + member.size]
    return None


def read_member(data: bytes, name: str) -> bytes | None:
    """One file of a (checked) archive, or None when it has no such file."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        try:
            member = archive.getmember(name)
        except KeyError:
            return None
        handle = archive.extractfile(member)
        return handle.read() if handle is not None else None


@dataclass(frozen=True)
class ActiveRecord:
    digest: str
    previous: str | None


class ArtefactStore:
    """Archives by digest and active pointers under ``root`` (on disk, durable); the
    unpacked run trees under ``run_root`` (``root / "run"`` unless given: see
    ``paths.run_root``)."""

    def __init__(self, root: Path, run_root: Path | None = None) -> None:
        self.root = root
        self.blobs = root / "artefacts"
        self.unpacked = run_root or root / "run"
        self.pointers = root / "plugins"

    @staticmethod
    def digest_of(data: bytes, expected_digest: str | None = None) -> str:
        """The archive's SHA-256, checked against the one declared with it."""
        actual = sha256_of(data)
        if expected_digest is not None and expected_digest != actual:
            raise PowerXError(
                ErrorCode.DIGEST_MISMATCH,
                f"The archive's SHA-256 is {actual}, not the declared {expected_digest}.",
                "the upload was damaged; retry it.",
            )
        return actual

    def put(self, data: bytes, expected_digest: str | None = None) -> str:
        """Store an archive (after the safety checks) and return its digest; idempotent."""
        actual = self.digest_of(data, expected_digest)
        target = self.blobs / actual
        if target.is_file():
            with contextlib.suppress(OSError):
                os.utime(target)  # saved again (an undo): as new as a fresh one, for pruning
            return actual
        check_archive(data)
        self.blobs.mkdir(parents=True, exist_ok=True)
        _write_atomically(target, data)
        return actual

    def read(self, digest: str) -> bytes:
        path = self.blobs / digest
        if not path.is_file():
            raise PowerXError(
                ErrorCode.ARTEFACT_NOT_FOUND,
                f"No artefact {digest[:12]} in the store.",
                "build and push the plugin again.",
                status=404,
            )
        return path.read_bytes()

    def run_folder(self, plugin: str = "") -> Path:
        """Where ``plugin``'s artefacts are unpacked (all of them, and only them)."""
        return self.unpacked / plugin if plugin else self.unpacked

    def unpack(self, digest: str, data: bytes | None = None, plugin: str = "") -> Path:
        """The artefact's files, unpacked once; a half-unpacked tree is never visible.
        ``data``: the archive, already stored and checked (saves reading it back);
        ``plugin``: the plugin it belongs to (its run folder)."""
        folder = self.run_folder(plugin)
        target = folder / digest
        if target.is_dir():
            return target
        if data is None:
            data = self.read(digest)
            check_archive(data)
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=folder))
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
                archive.extractall(staging, filter="data")
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        try:
            os.replace(staging, target)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another writer won the race
        return target

    def remove_run_tree(self, digest: str, plugin: str = "") -> None:
        """Drop an unpacked tree (the archive stays; unpacking again is cheap)."""
        shutil.rmtree(self.run_folder(plugin) / digest, ignore_errors=True)

    def active(self, plugin_id: str) -> ActiveRecord | None:
        path = self.pointers / plugin_id / "active.json"
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return ActiveRecord(digest=raw["digest"], previous=raw.get("previous"))

    def stored(self) -> list[str]:
        return (
            sorted(p.name for p in self.blobs.iterdir() if len(p.name) == 64)
            if self.blobs.is_dir()
            else []
        )

    def plugins(self) -> list[str]:
        return (
            sorted(p.name for p in self.pointers.iterdir() if (p / "active.json").is_file())
            if self.pointers.is_dir()
            else []
        )

    def stored_newest_first(self) -> list[tuple[str, int]]:
        """(digest, bytes) of every stored artefact, the last stored (or saved again) first."""
        found: list[tuple[float, str, int]] = []
        for digest in self.stored():
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile
                stat = (self.blobs / digest).stat()
                found.append((stat.st_mtime, digest, stat.st_size))
        return [(digest, size) for _, digest, size in sorted(found, reverse=True)]

    def remove(self, digest: str) -> None:
        """Drop a stored artefact and any tree unpacked from it."""
        (self.blobs / digest).unlink(missing_ok=True)
        for tree in self._run_trees():
            if tree.name == digest:
                shutil.rmtree(tree, ignore_errors=True)

    def clear(self, keep: set[str]) -> tuple[int, int]:
        """Remove every artefact (and its unpacked tree) not in ``keep``; (count, bytes)."""
        removed = freed = 0
        for digest in self.stored():
            if digest in keep:
                continue
            blob = self.blobs / digest
            freed += blob.stat().st_size
            blob.unlink(missing_ok=True)
            removed += 1
        for tree in self._run_trees():
            if tree.name not in keep:
                shutil.rmtree(tree, ignore_errors=True)
        return removed, freed

    def _run_trees(self) -> list[Path]:
        """Every unpacked tree: ``run/<digest>`` and ``run/<plugin-id>/<digest>``."""
        if not self.unpacked.is_dir():
            return []
        trees: list[Path] = []
        for entry in self.unpacked.iterdir():
            if _DIGEST.fullmatch(entry.name):
                trees.append(entry)
            elif entry.is_dir():
                trees.extend(p for p in entry.iterdir() if _DIGEST.fullmatch(p.name))
        return trees

    def set_active(self, plugin_id: str, digest: str) -> ActiveRecord:
        """Point the plugin at ``digest``, remembering the one it replaces (for rollback)."""
        current = self.active(plugin_id)
        previous = (
            current.digest
            if current and current.digest != digest
            else (current.previous if current else None)
        )
        record = ActiveRecord(digest=digest, previous=previous)
        path = self.pointers / plugin_id / "active.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, json.dumps({"digest": digest, "previous": previous}).encode())
        return record


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
