"""An IDE's Node breakpoints, mirrored into the simulator's breakpoint set.

js-debug (VS Code) and Chrome DevTools set their breakpoints in their own inspector
session, which belongs to one generation: when a reload replaces the process, they are
gone until the IDE has reconnected and set them again (100-200 ms, during which the new
generation already serves). So the inspector endpoint watches the IDE's breakpoint
requests as they go by and keeps the same breakpoints in the simulator's set, which is
replayed into every generation *before* it takes traffic, like the console's:

- ``Debugger.setBreakpointByUrl`` (a URL or URL pattern: the bundle, or a TypeScript file
  when js-debug sets "by path") and ``Debugger.setBreakpoint`` (a script id and a place)
  name a bundle position or a TypeScript line; both become a TypeScript ``file:line``
  in the set. A place that already has a breakpoint (the console's, or the IDE's from
  before the reload) is left as it is.
- ``Debugger.removeBreakpoint`` removes the mirrored breakpoint once none of the IDE's
  own breakpoints names its place any more (js-debug sets one place twice, by path and
  by script, and drops one of them). A breakpoint the console set is never removed by
  the IDE.

The IDE's own requests still reach the inspector unchanged: its breakpoint ids, hits and
pauses are as it expects. Work is done on the answers, in order, off the relay path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from powerx.debug.dap import Message
from powerx.debug.node_link import NodeLink

# (file, line, condition) -> our breakpoint id, or None when the place cannot have one
Place = Callable[[str, int, str | None], Awaitable[int | None]]
Unplace = Callable[[int], Awaitable[None]]
_WATCHED = ("Debugger.setBreakpointByUrl", "Debugger.setBreakpoint", "Debugger.removeBreakpoint")


@dataclass
class MirrorBook:
    """Which of the IDE's CDP breakpoint ids (per connection) stand for which of ours."""

    connections: list[dict[str, int]] = field(default_factory=list)

    def named(self, ours: int) -> bool:
        return any(ours in refs.values() for refs in self.connections)


class BreakpointMirror:
    """One IDE connection's view: its pending breakpoint requests and its ids."""

    def __init__(self, link: NodeLink, book: MirrorBook, place: Place, unplace: Unplace) -> None:
        self.link = link
        self.book = book
        self.place = place
        self.unplace = unplace
        self.refs: dict[str, int] = {}  # the IDE's CDP breakpoint id -> our id
        book.connections.append(self.refs)
        self._pending: dict[int, Message] = {}  # request id -> request
        self._work: asyncio.Queue[tuple[Message, Message] | None] = asyncio.Queue()
        self._worker = asyncio.create_task(self._run())

    # -- on the relay path: cheap tests, nothing awaited --------------------------------

    def from_ide(self, raw: str | bytes) -> None:
        text = raw if isinstance(raw, str) else raw.decode(errors="replace")
        if not any(method in text for method in _WATCHED):
            return
        with contextlib.suppress(ValueError):
            message = json.loads(text)
            if isinstance(message, dict) and message.get("method") in _WATCHED:
                self._pending[int(message["id"])] = message

    def from_inspector(self, raw: str | bytes) -> None:
        if not self._pending:
            return
        text = raw if isinstance(raw, str) else raw.decode(errors="replace")
        if not text.startswith('{"id":'):
            return
        with contextlib.suppress(ValueError):
            answer = json.loads(text)
            request = self._pending.pop(int(answer.get("id", -1)), None)
            if request is not None and "result" in answer:
                self._work.put_nowait((request, answer["result"]))

    # -- in order, off the relay path ----------------------------------------------------

    async def _run(self) -> None:
        while (item := await self._work.get()) is not None:
            request, result = item
            params = request.get("params") or {}
            method = request.get("method")
            if method == "Debugger.removeBreakpoint":
                await self._removed(str(params.get("breakpointId")))
                continue
            where = self.source_line(params)
            cdp_id = result.get("breakpointId")
            if where is None or cdp_id is None:
                continue
            condition = params.get("condition")
            ours = await self.place(where[0], where[1], condition if condition else None)
            if ours is not None:
                self.refs[str(cdp_id)] = ours

    async def _removed(self, cdp_id: str) -> None:
        ours = self.refs.pop(cdp_id, None)
        if ours is not None and not self.book.named(ours):
            await self.unplace(ours)

    def source_line(self, params: Message) -> tuple[str, int] | None:
        """The TypeScript ``file`` and 1-based line a breakpoint request names."""
        line = params.get("lineNumber")
        column = params.get("columnNumber") or 0
        location = params.get("location")
        url: str | None = None
        if isinstance(location, dict):  # Debugger.setBreakpoint: a script and a place
            url = self.link.scripts.get(str(location.get("scriptId")))
            line, column = location.get("lineNumber"), location.get("columnNumber") or 0
            if self.link.bundle is None and url:  # a program: its own files, no map
                file = self._plugin_file(url.removeprefix("file://"))
                return (file, line + 1) if file is not None and isinstance(line, int) else None
            if url != self.link.bundle_url:
                return None
        if not isinstance(line, int) or not isinstance(column, int):
            return None
        if self.link.bundle is None:
            return self._program_line(params, line)
        if url is None and not self._names(params, self.link.bundle_url, str(self.link.bundle)):
            return self._typescript_line(params, line)
        if self.link.map is None:
            return None
        original = self.link.map.original(line, column)
        if original is None:
            return None
        file = self._plugin_file(original[0])
        return (file, original[1] + 1) if file is not None else None

    def _program_line(self, params: Message, line: int) -> tuple[str, int] | None:
        """A Node program (no bundle): the IDE names the plugin's own file."""
        exact = params.get("url")
        if isinstance(exact, str):
            file = self._plugin_file(exact.removeprefix("file://"))
            return (file, line + 1) if file is not None else None
        pattern = params.get("urlRegex")
        if not isinstance(pattern, str):
            return None
        try:
            regex = re.compile(pattern)
        except re.error:
            return None
        for path in sorted(self.link.source_dir.rglob("*.[cm]js")) + sorted(
            self.link.source_dir.rglob("*.js")
        ):
            if "node_modules" in path.parts:
                continue
            if regex.search(path.as_uri()) or regex.search(str(path)):
                file = self._plugin_file(str(path))
                return (file, line + 1) if file is not None else None
        return None

    def _typescript_line(self, params: Message, line: int) -> tuple[str, int] | None:
        """js-debug also sets a breakpoint "by path", on the TypeScript file's URL."""
        for source in self.link.map.sources if self.link.map is not None else []:
            if self._names(params, Path(source).as_uri(), source):
                file = self._plugin_file(source)
                return (file, line + 1) if file is not None else None
        return None

    def _plugin_file(self, path: str) -> str | None:
        try:
            return Path(path).resolve().relative_to(self.link.source_dir).as_posix()
        except ValueError:
            return None

    @staticmethod
    def _names(params: Message, url: str, path: str) -> bool:
        if params.get("url") is not None:
            return params["url"] in {url, path}
        pattern = params.get("urlRegex")
        if not isinstance(pattern, str):
            return False
        try:
            return any(re.search(pattern, candidate) for candidate in (url, path))
        except re.error:
            return False

    async def close(self) -> None:
        """The connection ended (a reload, or the IDE left): its ids die with it; the
        mirrored breakpoints stay in the set, like the console's after ``quit``."""
        with contextlib.suppress(ValueError):
            self.book.connections.remove(self.refs)
        self._work.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self._worker, 5.0)
