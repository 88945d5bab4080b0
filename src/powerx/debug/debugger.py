"""The simulator's debugger: one :class:`DebugSession` per plugin, the supervisor's hooks,
and the checks a breakpoint passes before it is stored. It follows the reload's steps on
the event bus (a generation flipped or stopped) and reads the served plugins through one
:class:`ServedPlugins` view.

A plugin's generations start with the debugger only while its session wants one (a
breakpoint exists or a client is attached); the first breakpoint or client therefore
restarts the serving generation with the debugger (``restart``), exactly like a reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol

from powerx.debug.breakpoint_checks import (
    DEBUGGABLE_RUNTIMES,
    check_breakpoints,
    is_file,
    refuse_another_role,
)
from powerx.debug.breakpoints import Breakpoint, BreakpointSet, BreakpointSpec
from powerx.debug.cdp_proxy import InspectorProxy
from powerx.debug.dap import Message
from powerx.debug.dap_proxy import DapProxy, PortBook
from powerx.debug.go_link import GoLink
from powerx.debug.ide_access import IdeAccess
from powerx.debug.node_link import NodeLink
from powerx.debug.python_link import PythonLink
from powerx.debug.session import DebugSession, Link
from powerx.errors import PowerXError
from powerx.observe import events
from powerx.observe.events import Event
from powerx.observe.observer import Observer

IDE_MIRROR = "ide-mirror"  # the origin of breakpoints mirrored from an IDE's inspector session


class ServedPlugins(Protocol):
    """What the debugger reads of the plugins the simulator serves, and the one thing it
    asks of it (host/served_plugins.py implements it over the supervisor's slots)."""

    def runtime_of(self, plugin: str) -> str | None:
        """What the plugin runs on, as the debugger tells runtimes apart (None: unknown)."""
        ...

    def source_dir_of(self, plugin: str) -> Path | None:
        """The developer's folder of the plugin."""
        ...

    def code_root(self, plugin: str) -> Path | None:
        """Where the serving generation's code is (its artefact's ``src/``)."""
        ...

    async def restart(self, plugin: str) -> None:
        """Serve the same artefact again in a fresh generation (which loads the debugger)."""
        ...


class Debugger:
    def __init__(
        self,
        state_dir: Path,
        observer: Observer,
        plugins: ServedPlugins,
        bind: str = "127.0.0.1",
    ) -> None:
        self.dir = state_dir / "debug"
        self.observer = observer
        self.plugins = plugins
        self.bind = bind
        self.sessions: dict[str, DebugSession] = {}
        self.proxies: dict[str, DapProxy | InspectorProxy] = {}
        self.ports = PortBook(self.dir / "ports.json")
        self._tasks: set[asyncio.Task[None]] = set()
        observer.bus.subscribe(events.GENERATION_FLIPPED, self._on_flipped)
        observer.bus.subscribe(events.GENERATION_STOPPED, self._on_stopped)

    def session(self, plugin: str) -> DebugSession:
        session = self.sessions.get(plugin)
        if session is None:
            path = self.dir / "breakpoints" / f"{plugin}.json"
            session = DebugSession(
                plugin,
                BreakpointSet(plugin, path),
                self.observer.bus.publish,
                lambda generation, text: self._logpoint(plugin, generation, text),
            )
            self.sessions[plugin] = session
        return session

    def replay_summary(self, plugin: str, generation: int) -> dict[str, float] | None:
        """What was replayed into a generation (for the reload's answer), if it debugs."""
        session = self.sessions.get(plugin)
        result = session.replays.get(generation) if session else None
        if result is None:
            return None
        return {
            "breakpoints": result.set,
            "verified": result.verified,
            "replay_ms": round(result.replay_ms, 2),
        }

    def debugging(self, plugin: str) -> bool:
        """A debugger is in the serving generation (requests may pause)."""
        session = self.sessions.get(plugin)
        return session is not None and session.active_link is not None

    def _logpoint(self, plugin: str, generation: int, text: str) -> None:
        self.observer.logs.record(plugin, generation, "stdout", text, level="info")

    # -- supervisor hooks ----------------------------------------------------------------

    def wants_debug(self, plugin: str, runtime: str) -> bool:
        # A program's own runtime says no more than "program"; the plugin's says "go".
        runtime = self.plugins.runtime_of(plugin) or runtime
        return runtime in DEBUGGABLE_RUNTIMES and self.session(plugin).wanted()

    async def generation_listening(
        self, plugin: str, generation: int, run_dir: Path, endpoint: dict[str, Any]
    ) -> None:
        """A starting generation waits for its breakpoints: connect and replay them."""
        if endpoint.get("delve"):  # go: Delve's DAP port, the program halted until replayed
            source_dir = (self.plugins.source_dir_of(plugin) or run_dir).resolve()

            async def open_link(on_event: Callable[[Message], None]) -> Link:
                address = str(endpoint["unix"]) if "unix" in endpoint else int(endpoint["port"])
                return await GoLink.open_delve(generation, source_dir, address, on_event)
        elif "url" in endpoint:  # node: the inspector's WebSocket
            info = json.loads((run_dir / "artefact.json").read_text(encoding="utf-8"))
            bundle: Path | None = run_dir / str(info["runnable"])
            source_dir = self.plugins.source_dir_of(plugin) or run_dir
            if info.get("runtime") == "program":  # its scripts run as they are, from src/
                bundle, source_dir = None, run_dir / "src"

            async def open_link(on_event: Callable[[Message], None]) -> Link:
                return await NodeLink.open(
                    generation, source_dir, bundle, str(endpoint["url"]), on_event
                )
        else:  # python: debugpy's DAP port

            async def open_link(on_event: Callable[[Message], None]) -> Link:
                return await PythonLink.open(
                    generation,
                    run_dir / "src",
                    int(endpoint["port"]),
                    str(endpoint.get("token", "")),
                    on_event,
                )

        result = await self.session(plugin).attach_generation(generation, open_link)
        self.observer.client_report(
            "breakpoint_sync",
            plugin,
            f"generation-{generation}",
            {
                "generation": generation,
                "set": result.set,
                "verified": result.verified,
                "replay_ms": round(result.replay_ms, 2),
                "source": "simulator",
            },
        )

    def _on_flipped(self, event: Event) -> None:
        """Traffic moved to a new generation: the session follows (a paused client is told,
        the previous generation's link goes), beside the rest of the reload."""
        data = event.data
        session = self.session(str(data["plugin"]))
        self._spawn(session.generation_flipped(data["previous"], int(data["generation"])))

    def _on_stopped(self, event: Event) -> None:
        session = self.sessions.get(str(event.data["plugin"]))
        if session is not None:
            self._spawn(session.generation_stopped(int(event.data["generation"])))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- breakpoints ---------------------------------------------------------------------

    def check(self, plugin: str, specs: list[BreakpointSpec]) -> None:
        """The checks of debug/breakpoint_checks.py: all problems at once, before any change."""
        check_breakpoints(self.plugins, plugin, specs)

    async def replace(
        self, plugin: str, specs: list[BreakpointSpec], origin: str
    ) -> list[Breakpoint]:
        self.check(plugin, specs)
        session = self.session(plugin)
        before = set(session.breakpoints.files())
        session.breakpoints.replace_all(specs)
        self.remember_texts(plugin, session.breakpoints.files())
        cleared = sorted(before - set(session.breakpoints.files()))
        await self._apply(plugin, session, cleared)
        await self.observer.audit(
            "debug.breakpoints.set",
            plugin,
            {"origin": origin, "breakpoints": [bp.label() for bp in session.breakpoints.items]},
        )
        return session.breakpoints.items

    async def add(self, plugin: str, spec: BreakpointSpec, origin: str) -> Breakpoint:
        self.check(plugin, [spec])
        session = self.session(plugin)
        refuse_another_role(session.breakpoints.items, spec)
        added = session.breakpoints.add(spec)
        added.origin = "ide" if origin == IDE_MIRROR else None
        self.remember_texts(plugin, [added.file])
        await self._apply(plugin, session, [])
        await self.observer.audit(
            "debug.breakpoint.add",
            plugin,
            {"origin": origin, "breakpoint": added.label(), "kind": added.kind},
        )
        return added

    async def remove(self, plugin: str, breakpoint_id: int | None, origin: str) -> int:
        session = self.session(plugin)
        before = set(session.breakpoints.files())
        removed = session.breakpoints.remove(breakpoint_id)
        cleared = sorted(before - set(session.breakpoints.files()))
        await self._apply(plugin, session, cleared)
        await self.observer.audit(
            "debug.breakpoint.clear",
            plugin,
            {"origin": origin, "id": breakpoint_id, "removed": removed},
        )
        return removed

    async def replace_file(
        self, plugin: str, file: str, specs: list[BreakpointSpec], origin: str
    ) -> list[Breakpoint]:
        """An IDE's setBreakpoints: the file's whole set (debugpy verifies each line)."""
        session = self.session(plugin)
        had = file in session.breakpoints.files()
        placed = session.breakpoints.replace_file(file, specs)
        await self._apply(plugin, session, [file] if had and not placed else [])
        await self.observer.audit(
            "debug.breakpoints.set",
            plugin,
            {"origin": origin, "file": file, "lines": [bp.line for bp in placed]},
        )
        return placed

    async def mirror_place(
        self, plugin: str, file: str, line: int, condition: str | None
    ) -> int | None:
        """An IDE set a Node breakpoint in its own inspector session: keep one at the same
        place in the set, so every new generation has it before it serves. A place that
        has one already keeps it as it is. None when the place is not in the plugin."""
        session = self.session(plugin)
        existing = next((bp for bp in session.breakpoints.in_file(file) if bp.line == line), None)
        if existing is not None:
            return existing.id
        try:
            spec = BreakpointSpec(file=file, line=line, condition=condition)
            return (await self.add(plugin, spec, IDE_MIRROR)).id
        except (PowerXError, ValueError):
            return None  # the IDE's own breakpoint still works in this generation

    async def mirror_unplace(self, plugin: str, breakpoint_id: int) -> None:
        """The IDE removed its breakpoint: so does the set, if the IDE had put it there."""
        bp = self.session(plugin).breakpoints.get(breakpoint_id)
        if bp is not None and bp.origin == "ide":
            await self.remove(plugin, breakpoint_id, IDE_MIRROR)

    # -- the IDE proxy -------------------------------------------------------------------

    async def ensure_proxy(self, plugin: str) -> int | None:
        """Listen for IDEs on the plugin's stable port (once per plugin): a DAP server
        for Python plugins, an inspector endpoint for Node plugins."""
        runtime = self.plugins.runtime_of(plugin)
        if runtime not in DEBUGGABLE_RUNTIMES:
            return None
        proxy = self.proxies.get(plugin)
        if proxy is None and runtime == "node18":
            proxy = InspectorProxy(
                plugin,
                self.session(plugin),
                lambda: self.attach_client(plugin, "ide"),
                lambda: self.detach_client(plugin, "ide"),
                place=lambda file, line, condition: self.mirror_place(
                    plugin, file, line, condition
                ),
                unplace=lambda breakpoint_id: self.mirror_unplace(plugin, breakpoint_id),
            )
            self.proxies[plugin] = proxy
            await proxy.start(self.bind, self.ports.port_for(plugin))
        elif proxy is None:

            def source_dir() -> Path:
                return self.plugins.source_dir_of(plugin) or Path.cwd()

            async def set_file(file: str, specs: list[BreakpointSpec]) -> list[Any]:
                return await self.replace_file(plugin, file, specs, "ide")

            proxy = DapProxy(
                self.session(plugin),
                source_dir,
                lambda: self.attach_client(plugin, "ide"),
                lambda: self.detach_client(plugin, "ide"),
                set_file,
            )
            self.proxies[plugin] = proxy
            await proxy.start(self.bind, self.ports.port_for(plugin))
        return proxy.port

    def debug_port(self, plugin: str) -> int | None:
        proxy = self.proxies.get(plugin)
        return proxy.port if proxy else None

    async def ide_access(self, plugin: str) -> IdeAccess:
        """Port and secret of the plugin's IDE port: for the developer's tools only (the
        route that returns it needs the developer credential)."""
        self.check(plugin, [])  # mounted, and a runtime the debugger supports
        await self.ensure_proxy(plugin)  # open since the plugin first served; this is cheap
        proxy = self.proxies[plugin]
        assert proxy.port is not None  # set when it started listening
        source = self.plugins.source_dir_of(plugin)
        return IdeAccess(
            plugin,
            str(self.plugins.runtime_of(plugin)),
            self.bind,
            proxy.port,
            proxy.secret,
            str(source) if source is not None else None,
        )

    async def _apply(self, plugin: str, session: DebugSession, cleared: list[str]) -> None:
        if session.active_link is None and session.wanted():
            await self.plugins.restart(plugin)  # the new generation gets the whole set replayed
        else:
            await session.push_breakpoints(cleared)

    def follow_edit(self, plugin: str, old_run_dir: Path, new_run_dir: Path) -> list[str]:
        """Move the plugin's breakpoints with the edit between two artefacts. Python
        artefacts hold the sources; for Node the TypeScript is compared with the text
        each file had when its breakpoints were last placed."""
        session = self.sessions.get(plugin)
        if session is None or not session.breakpoints.items:
            return []
        notes = []
        node = self.plugins.runtime_of(plugin) == "node18"
        source_dir = self.plugins.source_dir_of(plugin)
        for file in session.breakpoints.files():
            if node and source_dir is not None:
                new_text = _read(source_dir / file)
                old_text = session.texts.get(file, new_text)
                session.texts[file] = new_text
            else:
                old_text = _read(old_run_dir / "src" / file)
                new_text = _read(new_run_dir / "src" / file)
            notes += session.breakpoints.follow_edit(file, old_text, new_text)
        return notes

    def remember_texts(self, plugin: str, files: list[str]) -> None:
        """Node: the TypeScript as the breakpoints were placed (see :meth:`follow_edit`)."""
        source_dir = self.plugins.source_dir_of(plugin)
        if self.plugins.runtime_of(plugin) != "node18" or source_dir is None:
            return
        for file in files:
            self.session(plugin).texts[file] = _read(source_dir / file)

    # -- clients -------------------------------------------------------------------------

    async def attach_client(self, plugin: str, kind: str) -> dict[str, Any]:
        self.check(plugin, [])
        session = self.session(plugin)
        session.clients += 1
        if session.active_link is None:
            await self.plugins.restart(plugin)
        await self.observer.audit("debug.attach", plugin, {"client": kind})
        return session.state()

    async def detach_client(self, plugin: str, kind: str) -> None:
        """The last client gone, a paused request goes on: nobody could resume it."""
        session = self.session(plugin)
        session.clients = max(0, session.clients - 1)
        if session.clients == 0 and session.paused is not None:
            with contextlib.suppress(PowerXError):  # its generation went meanwhile
                await session.command("continue", {})
        await self.observer.audit("debug.detach", plugin, {"client": kind})

    async def close(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(p.close() for p in self.proxies.values()), return_exceptions=True)
        await asyncio.gather(*(s.close() for s in self.sessions.values()), return_exceptions=True)


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if is_file(path) else ""
