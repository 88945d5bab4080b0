"""Watch a plugin's source folders and yield batches of changed paths.

Native events (watchfiles' Rust notifier, tuned to ~4 ms from write to batch) where they
work; a poller over ``st_mtime_ns`` and size where they do not: WSL on ``/mnt/*``, network
and FUSE file systems, or when asked (``--poll``, ``POWERX_FORCE_POLLING=1``). The poller
catches two saves within one second, which watchfiles' own polling mode misses.

The caller is told when the watcher is armed (a save from then on is seen), and again
whenever a folder created at the plugin's root joins what is watched. Editors' temporary
files are never reported: they are not saves.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from watchfiles import Change
from watchfiles._rust_notify import RustNotify

from powerx.bundling.pack import EXCLUDED_DIRS, EXCLUDED_SUFFIXES, is_scratch_file
from powerx.file_events import polling_reason

# A save is seen 1-2 steps after it lands: short steps buy a fast reload with idle wake-ups
# (benchmarks/watcher_latency.py measures the trade-off).
STEP_MS = 2
DEBOUNCE_MS = 60
# How long one wait in the notifier's thread lasts when nothing changes (watchfiles' own
# default); the thread also stops within a step of being halted.
TIMEOUT_MS = 5_000
POLL_INTERVAL_S = 0.05


@dataclass(frozen=True)
class WatchPlan:
    """What to watch for one plugin and how."""

    root: Path
    folders: tuple[Path, ...]  # top-level source folders, watched recursively
    polling: bool
    reason: str


# Called once the watcher is armed, and again with the new plan when the watched folders
# change (a folder created at the root, or removed).
OnArmed = Callable[[WatchPlan], None]


def _ignored(path: Path, root: Path) -> bool:
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return True
    return (
        any(part in EXCLUDED_DIRS or part == "dist" for part in parts)
        or path.name.endswith(EXCLUDED_SUFFIXES)
        or is_scratch_file(path.name)
    )


def _is_source_folder(path: Path, root: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not _ignored(path, root)


def _source_folders(root: Path) -> tuple[Path, ...]:
    return tuple(p for p in sorted(root.iterdir()) if _is_source_folder(p, root))


def plan_watch(root: Path, force_polling: bool = False) -> WatchPlan:
    """Watch the plugin's own source folders only; node_modules and caches cost inotify
    watches even when their events are filtered out."""
    root = root.resolve()
    reason = polling_reason(root, force_polling)
    return WatchPlan(root, _source_folders(root), reason is not None, reason or "inotify")


def _files_under(folders: Iterable[Path], root: Path) -> set[Path]:
    return {
        path
        for folder in folders
        for path in folder.rglob("*")
        if not _ignored(path, root) and path.is_file()
    }


def _snapshot(root: Path) -> tuple[tuple[Path, ...], dict[Path, tuple[int, int]]]:
    """The source folders at the root now, and every watched file's (mtime_ns, size)."""
    folders = _source_folders(root)
    state: dict[Path, tuple[int, int]] = {}
    for folder in (root, *folders):
        paths = folder.iterdir() if folder == root else folder.rglob("*")
        for path in paths:
            if _ignored(path, root):
                continue
            try:
                stat = path.stat()
            except OSError:
                continue
            if path.is_file():
                state[path] = (stat.st_mtime_ns, stat.st_size)
    return folders, state


async def _poll(
    plan: WatchPlan, stop: asyncio.Event, on_armed: OnArmed | None
) -> AsyncIterator[set[Path]]:
    """Armed once the first snapshot is taken: a change after it shows in the next one.
    Each snapshot lists the root again, so a folder created there is polled too."""
    folders, before = await asyncio.to_thread(_snapshot, plan.root)
    plan = replace(plan, folders=folders)
    if on_armed is not None:
        on_armed(plan)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), POLL_INTERVAL_S)
        folders, after = await asyncio.to_thread(_snapshot, plan.root)
        changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
        before = after
        if folders != plan.folders:
            plan = replace(plan, folders=folders)
            if on_armed is not None:
                on_armed(plan)
        if changed:
            yield changed


Arrival = set[tuple[int, str]] | BaseException


class _Notifier:
    """One Rust notifier over some folders, and the thread that waits on it.

    Armed when constructed: the notifier registers its inotify watches in its constructor
    and keeps what happens from then on until it is asked. (watchfiles' ``awatch`` builds
    its notifier inside the generator, so its caller cannot tell when that was.) The
    thread hands each batch to ``deliver``; it ends within a step once halted."""

    def __init__(
        self, folders: Iterable[Path], recursive: bool, deliver: Callable[[Arrival], None]
    ) -> None:
        self._halted = threading.Event()
        self._notify = RustNotify([str(f) for f in folders], False, False, 0, recursive, False)
        self._deliver = deliver
        threading.Thread(target=self._run, name="powerx-watch", daemon=True).start()

    def _run(self) -> None:
        try:
            while not self._halted.is_set():
                raw = self._notify.watch(DEBOUNCE_MS, STEP_MS, TIMEOUT_MS, self._halted)
                if isinstance(raw, set):
                    self._deliver(raw)
        except Exception as error:  # handed to the consumer, which raises it
            self._deliver(error)
        finally:
            self._notify.close()

    def halt(self) -> None:
        self._halted.set()


class _NativeWatch:
    """The root folder (not recursive: it may hold node_modules) and the source folders
    (recursive), merged into one stream. Folders, not files, are watched, so an editor's
    atomic save (write a temp file, rename it over the original) is seen every time.

    A folder that appears at the root later gets a notifier of its own; the files already
    in it when that notifier was armed are reported as changed, so none created in the
    moment between the folder's creation and its watch is lost."""

    def __init__(self, plan: WatchPlan, on_armed: OnArmed | None) -> None:
        self.plan = plan
        self.on_armed = on_armed
        self.arrivals: asyncio.Queue[Arrival] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def deliver(item: Arrival) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody listens
                loop.call_soon_threadsafe(self.arrivals.put_nowait, item)

        self.deliver = deliver
        self.notifiers: list[_Notifier] = []
        self.added: dict[Path, _Notifier] = {}  # folders created after the start

    def arm(self) -> None:
        self.notifiers.append(_Notifier((self.plan.root,), False, self.deliver))
        if self.plan.folders:
            self.notifiers.append(_Notifier(self.plan.folders, True, self.deliver))
        if self.on_armed is not None:
            self.on_armed(self.plan)

    def halt(self) -> None:
        for notifier in (*self.notifiers, *self.added.values()):
            notifier.halt()

    def batch(self, raw: set[tuple[int, str]]) -> set[Path]:
        """The changed files in ``raw``; a folder created or removed at the root re-plans."""
        root = self.plan.root
        folders = set(self.plan.folders)
        changed: set[Path] = set()
        for change, name in raw:
            path = Path(name)
            if _ignored(path, root):
                continue
            if path.parent == root and _is_source_folder(path, root):
                if change == Change.added:  # new, or removed and made again: watch it anew
                    previous = self.added.pop(path, None)
                    if previous is not None:
                        previous.halt()
                    self.added[path] = _Notifier((path,), True, self.deliver)
                    changed |= _files_under((path,), root)
                    folders.add(path)
                continue  # a folder is not a change; the files in it are
            if path in folders and not path.exists():
                folders.discard(path)
                gone = self.added.pop(path, None)
                if gone is not None:
                    gone.halt()
            changed.add(path)
        if folders != set(self.plan.folders):
            self.plan = replace(self.plan, folders=tuple(sorted(folders)))
            if self.on_armed is not None:
                self.on_armed(self.plan)
        return changed


async def _native(
    plan: WatchPlan, stop: asyncio.Event, on_armed: OnArmed | None
) -> AsyncIterator[set[Path]]:
    watcher = _NativeWatch(plan, on_armed)
    stopper = asyncio.create_task(stop.wait())
    try:
        watcher.arm()
        while not stop.is_set():
            getter = asyncio.create_task(watcher.arrivals.get())
            await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                break
            item = getter.result()
            if isinstance(item, BaseException):
                raise item
            changed = watcher.batch(item)
            if changed:
                yield changed
    finally:
        watcher.halt()
        stopper.cancel()
        await asyncio.gather(stopper, return_exceptions=True)


async def watch(
    plan: WatchPlan, stop: asyncio.Event, on_armed: OnArmed | None = None
) -> AsyncIterator[set[Path]]:
    """Batches of changed files until ``stop`` is set; falls back to polling if native
    watching cannot start (e.g. the inotify watch limit is reached). ``on_armed`` is
    called once a save would be seen, and again with the new plan when the watched
    folders change."""
    if plan.polling:
        async for batch in _poll(plan, stop, on_armed):
            yield batch
        return
    try:
        async for batch in _native(plan, stop, on_armed):
            yield batch
    except OSError:
        fallback = WatchPlan(plan.root, plan.folders, True, "native watching failed")
        async for batch in _poll(fallback, stop, on_armed):
            yield batch
