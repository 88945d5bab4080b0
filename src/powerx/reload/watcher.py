"""Watch a plugin's source folders and yield batches of changed paths.

Native events (watchfiles, tuned to ~4 ms from write to batch) where they work;
a poller over ``st_mtime_ns`` and size where they do not: WSL on ``/mnt/*``, network
and FUSE file systems, or when asked (``--poll``, ``POWERX_FORCE_POLLING=1``). The poller
catches two saves within one second, which watchfiles' own polling mode misses.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import watchfiles

from powerx.build.pack import EXCLUDED_DIRS, EXCLUDED_SUFFIXES

# watchfiles yields a batch once a step passes with no new change, so a save is seen
# 1-2 steps after it lands. Measured p50 (benchmarks/watcher_latency.py): 2.5 ms with 1 ms
# steps, 3.6 ms with 2 ms, 7.7 ms with 5 ms. A "Save All" whose writes are more than a step
# apart arrives in two batches; the dev loop then drops the build of the first (see
# reload/executor.py), so it still reloads once. The price of short steps is wake-ups
# while idle (simulator, two plugins watched: 1.9 % of a core with 2 ms steps, 1.1 % with
# 10 ms).
STEP_MS = 2
DEBOUNCE_MS = 60
POLL_INTERVAL_S = 0.05
_NETWORK_FS = {
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "9p",
    "drvfs",
    "fuse.sshfs",
    "sshfs",
    "afs",
    "davfs",
    "fuse.rclone",
    "vboxsf",
    "prl_fs",
}


@dataclass(frozen=True)
class WatchPlan:
    """What to watch for one plugin and how."""

    root: Path
    folders: tuple[Path, ...]  # top-level source folders, watched recursively
    polling: bool
    reason: str


def _ignored(path: Path, root: Path) -> bool:
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return True
    return (
        any(part in EXCLUDED_DIRS or part == "dist" for part in parts)
        or path.name.endswith(EXCLUDED_SUFFIXES)
        or path.name.startswith(".#")
    )


def _mount_fstype(path: Path) -> str | None:
    """The file system type of the mount holding ``path`` (Linux), else None."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    best, fstype = "", None
    resolved = str(path.resolve())
    for line in mounts:
        fields = line.split()
        if (
            len(fields) >= 3
            and (resolved == fields[1] or resolved.startswith(fields[1].rstrip("/") + "/"))
            and len(fields[1]) > len(best)
        ):
            best, fstype = fields[1], fields[2]
    return fstype


def polling_reason(root: Path, force: bool) -> str | None:
    """Why native events cannot be trusted for this folder (None: they can)."""
    if force or os.environ.get("POWERX_FORCE_POLLING", "").lower() in {"1", "true", "yes"}:
        return "polling forced (--poll or POWERX_FORCE_POLLING)"
    if "microsoft" in platform.release().lower() and str(root.resolve()).startswith("/mnt/"):
        return "WSL with a Windows drive (/mnt): inotify events do not arrive"
    fstype = _mount_fstype(root)
    if fstype in _NETWORK_FS:
        return f"network file system ({fstype}): inotify events do not arrive"
    return None


def plan_watch(root: Path, force_polling: bool = False) -> WatchPlan:
    """Watch the plugin's own source folders only; node_modules and caches cost inotify
    watches even when their events are filtered out."""
    root = root.resolve()
    folders = [
        p
        for p in sorted(root.iterdir())
        if p.is_dir() and not p.is_symlink() and not _ignored(p, root)
    ]
    reason = polling_reason(root, force_polling)
    return WatchPlan(root, tuple(folders), reason is not None, reason or "inotify")


def _snapshot(plan: WatchPlan) -> dict[Path, tuple[int, int]]:
    state: dict[Path, tuple[int, int]] = {}
    for folder in (plan.root, *plan.folders):
        paths = folder.iterdir() if folder == plan.root else folder.rglob("*")
        for path in paths:
            if _ignored(path, plan.root):
                continue
            try:
                stat = path.stat()
            except OSError:
                continue
            if path.is_file():
                state[path] = (stat.st_mtime_ns, stat.st_size)
    return state


async def _poll(plan: WatchPlan, stop: asyncio.Event) -> AsyncIterator[set[Path]]:
    before = await asyncio.to_thread(_snapshot, plan)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), POLL_INTERVAL_S)
        after = await asyncio.to_thread(_snapshot, plan)
        changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
        before = after
        if changed:
            yield changed


async def _native(plan: WatchPlan, stop: asyncio.Event) -> AsyncIterator[set[Path]]:
    """The root folder (not recursive: it may hold node_modules) and the source folders
    (recursive), merged into one stream. Folders, not files, are watched, so an editor's
    atomic save (write a temp file, rename it over the original) is seen every time."""
    batches: asyncio.Queue[set[Path] | BaseException] = asyncio.Queue()

    async def pump(paths: tuple[Path, ...], recursive: bool) -> None:
        try:
            async for changes in watchfiles.awatch(
                *paths,
                step=STEP_MS,
                debounce=DEBOUNCE_MS,
                stop_event=stop,
                recursive=recursive,
                watch_filter=lambda _change, path: not _ignored(Path(path), plan.root),
            ):
                await batches.put({Path(path) for _change, path in changes})
        except Exception as error:  # surfaced to the consumer below
            await batches.put(error)

    pumps = [asyncio.create_task(pump((plan.root,), recursive=False))]
    if plan.folders:
        pumps.append(asyncio.create_task(pump(plan.folders, recursive=True)))
    stopper = asyncio.create_task(stop.wait())
    try:
        while not stop.is_set():
            getter = asyncio.create_task(batches.get())
            await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                break
            item = getter.result()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stopper.cancel()
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, stopper, return_exceptions=True)


async def watch(plan: WatchPlan, stop: asyncio.Event) -> AsyncIterator[set[Path]]:
    """Batches of changed files until ``stop`` is set; falls back to polling if native
    watching cannot start (e.g. the inotify watch limit is reached)."""
    if plan.polling:
        async for batch in _poll(plan, stop):
            yield batch
        return
    try:
        async for batch in _native(plan, stop):
            yield batch
    except OSError:
        fallback = WatchPlan(plan.root, plan.folders, True, "native watching failed")
        async for batch in _poll(fallback, stop):
            yield batch
