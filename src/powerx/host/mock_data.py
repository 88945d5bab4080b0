"""Editable mock data: each tenant's host API data lives in a file the developer edits,
and an edit applies at once, without restarting any plugin.

``.powerx/mock-data/<tenant>.yaml`` is written from the tenant's seed the first time the
tenant is used (at start for the run's tenants; for a tenant a request names later, in the
background, after its seed already answers). The folder is watched: a saved edit is read,
checked (host/mock_data_file.py) and served from the next call on; one that cannot be
used is refused with file, line and fix, and the last good data keeps serving. Deleting
a file, or ``powerx data reset``, puts the seed back.

No file is touched on the request path: files are read by the watcher's task and written
by a worker thread; a host API call only reads what is in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchfiles._rust_notify import RustNotify

from powerx.config import Tuning
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.file_events import polling_reason
from powerx.host.mock_data_file import SUFFIXES, file_name, parse, render, tenant_of
from powerx.host.tenants import TenantData, seed

__all__ = ["MockDataChange", "MockDataFiles", "MockDataState"]

FOLDER = "mock-data"
# How often the idle notifier wakes up (its step and debounce: ``powerx.config.Tuning``).
_TIMEOUT_MS = 5_000
_POLL_MS = 100


@dataclass
class MockDataState:
    """Where a tenant's data comes from, and whether its last edit could be used."""

    tenant: str
    file: Path | None  # None: the tenant's name is no file name; seeded, in memory only
    digest: str | None = None  # SHA-256 of the file text in use
    revision: int = 0  # edits (and resets) applied so far
    applied_at: float | None = None
    problem: PowerXError | None = None  # the last edit, refused

    def to_dict(self) -> dict[str, Any]:
        problem = self.problem
        return {
            "tenant": self.tenant,
            "file": str(self.file) if self.file else None,
            "editable": self.file is not None,
            "digest": self.digest,
            "revision": self.revision,
            "applied_at": self.applied_at,
            "problem": None
            if problem is None
            else {
                "code": problem.code,
                "message": problem.message,
                "fix": problem.fix,
                "line": problem.details.get("line"),
                "problems": [p.to_dict() for p in problem.problems],
            },
        }


@dataclass(frozen=True)
class MockDataChange:
    """What happened to a tenant's data (for the event stream and the terminal)."""

    tenant: str
    status: str  # "applied" | "refused" | "reset" | "seeded"
    state: MockDataState = field(compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, **self.state.to_dict()}


class _Notifier:
    """A notifier over one folder, armed when constructed (a change right after is seen),
    and the thread that waits on it and hands each batch to ``deliver``."""

    def __init__(
        self,
        folder: Path,
        deliver: Callable[[set[tuple[int, str]]], None],
        polling: bool,
        tuning: Tuning,
    ) -> None:
        self._halted = threading.Event()
        self._debounce_ms, self._step_ms = tuning.mock_data_debounce_ms, tuning.mock_data_step_ms
        self._notify = RustNotify([str(folder)], False, polling, _POLL_MS, False, False)
        self._deliver = deliver
        threading.Thread(target=self._run, name="powerx-mock-data", daemon=True).start()

    def _run(self) -> None:
        try:
            while not self._halted.is_set():
                raw = self._notify.watch(
                    self._debounce_ms, self._step_ms, _TIMEOUT_MS, self._halted
                )
                if isinstance(raw, set):
                    self._deliver(raw)
        finally:
            self._notify.close()

    def halt(self) -> None:
        self._halted.set()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _write(path: Path, text: str) -> None:
    """Atomically: the watcher never reads half a file of ours."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


class MockDataFiles:
    """The mock data folder of one simulator, kept in step with ``data``."""

    def __init__(
        self,
        folder: Path,
        data: TenantData,
        on_change: Callable[[MockDataChange], None],
        tuning: Tuning | None = None,
    ) -> None:
        self.folder = folder
        self.tuning = tuning or Tuning()
        self.data = data
        self.on_change = on_change
        self.states: dict[str, MockDataState] = {}
        self._notifier: _Notifier | None = None
        self._changed: asyncio.Queue[set[Path]] = asyncio.Queue()
        self._consumer: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] = set()
        data.on_first_use = self._first_use

    # -- life -------------------------------------------------------------------------------

    def start(self, tenants: Iterable[str]) -> None:
        """Load every file in the folder, write the seed of each of ``tenants`` that has
        none, and watch the folder (armed when this returns). Before requests are served:
        reading and writing here is start-up work, not a request's."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.folder.iterdir()):
            tenant = tenant_of(path)
            if tenant is not None and tenant not in self.states:
                self._load(tenant, path)
        for tenant in tenants:
            self.data.tenant(tenant)  # seeds it in memory: _first_use writes its file
        loop = asyncio.get_running_loop()

        def deliver(raw: set[tuple[int, str]]) -> None:
            paths = {Path(name) for _, name in raw}
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody listens
                loop.call_soon_threadsafe(self._changed.put_nowait, paths)

        polling = polling_reason(self.folder, False) is not None
        self._notifier = _Notifier(self.folder, deliver, polling, self.tuning)
        self._consumer = loop.create_task(self._apply_changes())

    async def close(self) -> None:
        if self._notifier is not None:
            self._notifier.halt()
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    # -- what a tenant serves ----------------------------------------------------------------

    def _state(self, tenant: str) -> MockDataState:
        state = self.states.get(tenant)
        if state is None:
            name = file_name(tenant)
            state = self.states[tenant] = MockDataState(
                tenant, self.folder / name if name else None
            )
        return state

    def _path_of(self, tenant: str) -> Path | None:
        """The tenant's file as it is on disk (YAML or JSON), else where its YAML goes."""
        state = self._state(tenant)
        if state.file is None:
            return None
        for suffix in SUFFIXES:
            candidate = state.file.with_suffix(suffix)
            if candidate.exists():
                return candidate
        return state.file

    def _first_use(self, tenant: str, seeded: dict[str, Any]) -> None:
        """A tenant no file named was used: its seed serves now; its file is written in a
        worker thread (a request may be waiting on this call)."""
        state = self._state(tenant)
        if state.file is None:
            return
        text = render(tenant, seeded)
        state.digest, state.applied_at = _digest(text), time.time()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # used outside the server (a test, a script): write it now
            _write(state.file, text)
            return
        task = loop.create_task(asyncio.to_thread(_write, state.file, text))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        self.on_change(MockDataChange(tenant, "seeded", state))

    def _load(self, tenant: str, path: Path) -> None:
        """Start-up: use the file's data, or (when it cannot be used) the seed, refused."""
        text = path.read_text(encoding="utf-8")
        state = self._state(tenant)
        try:
            self.data.replace(tenant, parse(path, tenant, text))
        except PowerXError as error:
            state.problem = error
            self.data.replace(tenant, seed(tenant))
            self.on_change(MockDataChange(tenant, "refused", state))
            return
        state.digest, state.applied_at, state.problem = _digest(text), time.time(), None

    async def _apply_changes(self) -> None:
        while True:
            paths = await self._changed.get()
            tenants = {t for t in map(tenant_of, paths) if t is not None}
            for tenant in sorted(tenants):
                await self._apply_file(tenant)

    async def _apply_file(self, tenant: str) -> None:
        """The tenant's file changed (or went): apply what it holds now, or refuse it."""
        path = self._path_of(tenant)
        if path is None:
            return
        try:
            text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        except FileNotFoundError:  # deleted: the seed again, as on first use
            await self.reset(tenant)
            return
        except (OSError, UnicodeDecodeError) as exc:
            self._refuse(tenant, _unreadable(path, tenant, exc))
            return
        state = self._state(tenant)
        digest = _digest(text)
        if digest == state.digest and state.problem is None:
            return  # our own write, or a save that changed nothing
        try:
            data = await asyncio.to_thread(parse, path, tenant, text)
        except PowerXError as error:
            self._refuse(tenant, error)
            return
        self.data.replace(tenant, data)
        state.digest, state.applied_at, state.problem = digest, time.time(), None
        state.revision += 1
        self.on_change(MockDataChange(tenant, "applied", state))

    def _refuse(self, tenant: str, error: PowerXError) -> None:
        state = self._state(tenant)
        state.problem = error
        self.on_change(MockDataChange(tenant, "refused", state))

    async def reset(self, tenant: str) -> MockDataState:
        """Serve the tenant's seed again and write it to its file."""
        state = self._state(tenant)
        seeded = seed(tenant)
        self.data.replace(tenant, seeded)
        if state.file is not None:
            text = render(tenant, seeded)
            for suffix in SUFFIXES:  # a JSON twin would win over the YAML written now
                other = state.file.with_suffix(suffix)
                if other != state.file:
                    await asyncio.to_thread(other.unlink, True)
            await asyncio.to_thread(_write, state.file, text)
            state.digest = _digest(text)
        state.applied_at, state.problem = time.time(), None
        state.revision += 1
        self.on_change(MockDataChange(tenant, "reset", state))
        return state

    def snapshot(self, tenant: str) -> dict[str, Any]:
        """What ``tenant`` serves now, with where it comes from."""
        data = self.data.tenant(tenant)
        return {**self._state(tenant).to_dict(), "data": data}

    def listing(self) -> list[dict[str, Any]]:
        known = sorted(set(self.states) | set(self.data.known()))
        listed = []
        for tenant in known:
            data = self.data.tenant(tenant)
            counts = {k: len(data[k]) for k in ("contacts", "messages", "members", "teams")}
            listed.append({**self._state(tenant).to_dict(), "counts": counts})
        return listed


def _unreadable(path: Path, tenant: str, exc: Exception) -> PowerXError:
    return PowerXError(
        ErrorCode.MOCK_DATA_INVALID,
        f"{path}:1: the file cannot be read ({exc}).",
        f"save it as UTF-8 text, or `powerx data reset {tenant}` to write the seed back.",
        details={"tenant": tenant, "file": str(path), "line": 1},
    )
