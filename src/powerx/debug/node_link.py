"""The simulator's Chrome DevTools Protocol connection to one Node generation's inspector.

The generation opens its inspector and waits (``inspector.waitForDebugger()``) until the
simulator has set the breakpoints and sent ``Runtime.runIfWaitingForDebugger``; only then
does it load the plugin's bundle. Breakpoints name TypeScript lines; the bundle's source
map turns them into bundle positions for ``Debugger.setBreakpointByUrl`` (which binds when
the bundle is parsed), and turns paused frames back into TypeScript lines. A backend
program has no bundle (``bundle=None``): its scripts are its sources, under ``source_dir``.

To the session this link looks like :class:`~powerx.debug.python_link.PythonLink`: the
same methods, and DAP-shaped ``stopped``/``continued`` events, so the console and the
HTTP API work the same for both runtimes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import websockets

from powerx.debug.breakpoints import HIT_CONDITION_HELP, Breakpoint, parse_hit_condition
from powerx.debug.cdp_values import describe as _describe
from powerx.debug.cdp_values import object_literal
from powerx.debug.dap import DapError, Message
from powerx.debug.python_link import ReplayResult, orphaned
from powerx.debug.simulator_code import blackbox_patterns, is_simulator_file
from powerx.debug.sourcemap import SourceMap

TIMEOUT_S = 10.0
_STEPS = {
    "continue": "Debugger.resume",
    "next": "Debugger.stepOver",
    "stepIn": "Debugger.stepInto",
    "stepOut": "Debugger.stepOut",
}


class NodeLink:
    def __init__(
        self,
        generation: int,
        source_dir: Path,
        bundle: Path | None,
        socket: Any,
        on_event: Callable[[Message], None],
        url: str = "",
    ) -> None:
        self.generation = generation
        self.url = url  # the generation's own inspector (the IDE endpoint pipes to it)
        self.source_dir = source_dir.resolve()
        self.bundle = bundle.resolve() if bundle is not None else None
        self.bundle_url = self.bundle.as_uri() if self.bundle is not None else ""
        map_file = bundle.with_name(bundle.name + ".map") if bundle is not None else None
        self.map = SourceMap.load(map_file) if map_file and map_file.is_file() else None
        self._socket = socket
        self._on_event = on_event
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Message]] = {}
        self.ids: dict[Any, int] = {}  # CDP breakpoint id -> our breakpoint id
        self._placed: dict[str, str] = {}  # CDP breakpoint id -> file
        self._placements = 0  # each placement counts its hits afresh, as debugpy does
        self.frames: list[Message] = []
        self.scripts: dict[str, str] = {}  # scriptId -> url (frames often carry no url)
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(
        cls,
        generation: int,
        source_dir: Path,
        bundle: Path | None,
        url: str,
        on_event: Callable[[Message], None],
    ) -> NodeLink:
        socket = await asyncio.wait_for(
            websockets.connect(url, max_size=None, ping_interval=None, compression=None),
            TIMEOUT_S,
        )
        return cls(generation, source_dir, bundle, socket, on_event, url)

    # -- protocol ----------------------------------------------------------------------

    async def call(self, method: str, params: Message | None = None) -> Message:
        number = next(self._ids)
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[number] = future
        try:
            await self._socket.send(
                json.dumps({"id": number, "method": method, "params": params or {}})
            )
            answer = await asyncio.wait_for(future, TIMEOUT_S)
        except websockets.ConnectionClosed:
            raise DapError(method, "the generation's inspector closed") from None
        finally:
            self._pending.pop(number, None)
        if "error" in answer:
            raise DapError(method, str(answer["error"].get("message")))
        result = answer.get("result")
        return result if isinstance(result, dict) else {}

    async def _read(self) -> None:
        try:
            async for raw in self._socket:
                message = json.loads(raw)
                if "id" in message:
                    future = self._pending.get(int(message["id"]))
                    if future is not None and not future.done():
                        future.set_result(message)
                else:
                    self._event(str(message.get("method")), message.get("params") or {})
        except (websockets.ConnectionClosed, ValueError):
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_result({"error": {"message": "the inspector closed"}})

    def _event(self, method: str, params: Message) -> None:
        if method == "Debugger.paused":
            self.frames = list(params.get("callFrames") or [])
            hit = list(params.get("hitBreakpoints") or [])
            reason = (
                "breakpoint"
                if hit
                else "step"
                if params.get("reason") == "other"
                else str(params.get("reason"))
            )
            body = {"threadId": 1, "reason": reason, "hitBreakpointIds": hit}
            self._on_event({"type": "event", "event": "stopped", "body": body})
        elif method == "Debugger.scriptParsed":
            self.scripts[str(params.get("scriptId"))] = str(params.get("url") or "")
        elif method == "Debugger.resumed":
            self.frames = []
            self._on_event({"type": "event", "event": "continued", "body": {"threadId": 1}})

    # -- paths -----------------------------------------------------------------------------

    def read_source(self, file: str) -> str | None:
        try:
            return (self.source_dir / file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def _plugin_file(self, path: str) -> str | None:
        try:
            return Path(path).resolve().relative_to(self.source_dir).as_posix()
        except ValueError:
            return None

    # -- handshake and breakpoints ---------------------------------------------------------

    async def handshake(
        self,
        breakpoints: list[Breakpoint],
        exception_filters: Message | None = None,
        function_breakpoints: Message | None = None,
    ) -> ReplayResult:
        started = time.perf_counter()
        await self.call("Debugger.enable")
        # Stepping runs through the shim; `out` from the handler finishes the request.
        await self.call("Debugger.setBlackboxPatterns", {"patterns": blackbox_patterns()})
        await self.set_exception_breakpoints(exception_filters or {"filters": []})
        result = await self.set_breakpoints(breakpoints)
        await self.call("Runtime.runIfWaitingForDebugger")
        result.replay_ms = (time.perf_counter() - started) * 1000
        return result

    async def set_exception_breakpoints(self, arguments: Message) -> Message:
        """DAP's exception filters (as the console and debugpy name them) in V8's terms:
        ``raised`` pauses on every throw, ``uncaught``/``userUnhandled`` on uncaught ones.
        Throws inside the shim are not the plugin's (blackboxed): they never pause."""
        filters = set(arguments.get("filters") or [])
        state = (
            "all"
            if "raised" in filters
            else "uncaught"
            if filters & {"uncaught", "userUnhandled"}
            else "none"
        )
        await self.call("Debugger.setPauseOnExceptions", {"state": state})
        return {}

    def saw_event(self, message: Message) -> None:
        """Nothing to wait for: CDP has no ``initialized`` step."""

    async def set_breakpoints(
        self, breakpoints: list[Breakpoint], files: list[str] | None = None
    ) -> ReplayResult:
        result = ReplayResult()
        touched = set(files or []) | {bp.file for bp in breakpoints}
        for cdp_id, file in list(self._placed.items()):
            if file in touched:
                with contextlib.suppress(DapError):
                    await self.call("Debugger.removeBreakpoint", {"breakpointId": cdp_id})
                self._placed.pop(cdp_id, None)
                self.ids.pop(cdp_id, None)
        for bp in breakpoints:
            if orphaned(bp):
                continue
            result.set += 1
            hit = parse_hit_condition(bp.hit_condition) if bp.hit_condition else None
            if bp.hit_condition and hit is None:
                bp.verified = False  # saved before hit counts were checked on the way in
                bp.message = f"hit condition {bp.hit_condition!r}: use {HIT_CONDITION_HELP}"
                continue
            where = self._position(bp)
            if where is None or not _is_code(self.read_source(bp.file), bp.line):
                bp.verified = False
                bp.message = (
                    f"no code at {bp.label()} in the bundle (a comment, a type or a blank line?)"
                )
                continue
            params: Message = {"url": where[0], "lineNumber": where[1], "columnNumber": where[2]}
            self._placements += 1
            condition = _condition(bp, hit, self._placements)
            if condition:
                params["condition"] = condition
            answer = await self.call("Debugger.setBreakpointByUrl", params)
            cdp_id = str(answer.get("breakpointId"))
            self.ids[cdp_id] = bp.id
            self._placed[cdp_id] = bp.file
            bp.verified, bp.message = True, None
            result.verified += 1
        return result

    def _position(self, bp: Breakpoint) -> tuple[str, int, int] | None:
        """The script URL, line and column (0-based) where ``bp`` binds."""
        if self.bundle is None:  # a program: the file itself
            return (self.source_dir / bp.file).as_uri(), bp.line - 1, 0
        if self.map is None:
            return None
        found = self.map.generated(str((self.source_dir / bp.file).resolve()), bp.line - 1)
        return None if found is None else (self.bundle_url, *found)

    # -- inspection ------------------------------------------------------------------------

    async def stack(self, thread_id: int, levels: int = 20) -> list[dict[str, Any]]:
        frames = []
        for index, frame in enumerate(self.frames[:levels]):
            location = frame.get("location") or {}
            line0, column = int(location.get("lineNumber", 0)), int(location.get("columnNumber", 0))
            url = str(frame.get("url") or self.scripts.get(str(location.get("scriptId")), ""))
            if is_simulator_file(url):
                continue  # the shim, never the user's concern
            file, line, mine = url, line0 + 1, False
            if self.bundle is None and url.startswith("file://"):
                relative = self._plugin_file(url.removeprefix("file://"))
                file, mine = relative or url, relative is not None
            elif url == self.bundle_url and self.map is not None:
                original = self.map.original(line0, column)
                if original is not None:
                    relative = self._plugin_file(original[0])
                    file, line, mine = (
                        relative or original[0],
                        original[1] + 1,
                        relative is not None,
                    )
            frames.append(
                {
                    "id": index,
                    "name": frame.get("functionName") or "(anonymous)",
                    "file": file.removeprefix("file://"),
                    "line": line,
                    "plugin_code": mine,
                }
            )
        return frames

    async def locals(self, frame_id: int, limit: int = 100) -> dict[str, str]:
        if not 0 <= frame_id < len(self.frames):
            raise DapError("locals", "the frame is gone (the plugin resumed)")
        found: dict[str, str] = {}
        for scope in self.frames[frame_id].get("scopeChain") or []:
            if scope.get("type") not in {"local", "block"}:
                continue
            object_id = (scope.get("object") or {}).get("objectId")
            answer = await self.call(
                "Runtime.getProperties",
                {"objectId": object_id, "ownProperties": True, "generatePreview": True},
            )
            for prop in (answer.get("result") or [])[:limit]:
                name = str(prop.get("name"))
                if name not in found:
                    found[name] = _describe(prop.get("value") or {})
            if scope.get("type") == "local":
                break
        return found

    async def evaluate(self, expression: str, frame_id: int | None) -> str:
        if frame_id is None or not 0 <= frame_id < len(self.frames):
            raise DapError("evaluate", "the frame is gone (the plugin resumed)")
        answer = await self.call(
            "Debugger.evaluateOnCallFrame",
            {
                "callFrameId": self.frames[frame_id]["callFrameId"],
                "expression": object_literal(expression),
                "generatePreview": True,
            },
        )
        if answer.get("exceptionDetails"):
            details = answer["exceptionDetails"]
            text = str((details.get("exception") or {}).get("description") or details.get("text"))
            raise DapError("evaluate", text.splitlines()[0] if text else "failed")
        return _describe(answer.get("result") or {})

    async def log_point(self, message: str, frame_id: int) -> str:
        """A log point's message, its ``{expr}`` parts evaluated in the paused frame."""
        if not 0 <= frame_id < len(self.frames):
            raise DapError("evaluate", "the frame is gone (the plugin resumed)")
        answer = await self.call(
            "Debugger.evaluateOnCallFrame",
            {
                "callFrameId": self.frames[frame_id]["callFrameId"],
                "expression": log_template(message),
            },
        )
        value = answer.get("result") or {}
        if answer.get("exceptionDetails") or not isinstance(value.get("value"), str):
            details = answer.get("exceptionDetails") or {}
            text = (details.get("exception") or {}).get("description") or details.get("text")
            return f"{message} (log point failed: {str(text).splitlines()[0]})"
        return str(value["value"])

    async def resume(self, command: str, thread_id: int) -> None:
        await self.call(_STEPS[command])

    async def detach(self) -> None:
        """Closing the only session resumes the generation if it was paused."""
        with contextlib.suppress(Exception):
            await self._socket.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


def _condition(bp: Breakpoint, hit: tuple[str, int] | None, placement: int) -> str | None:
    """V8 has no hit counts: they become part of the condition. The hit count is kept in
    the generation per placement (so it restarts with each generation and each change of
    the breakpoints, as in debugpy) and goes up only when the condition holds. V8 has no
    log points either: a log point pauses, the simulator fills its message in on the
    paused frame, logs it, counts the hit and resumes (see DebugSession)."""
    parts = [f"({bp.condition})"] if bp.condition else []
    if hit is not None:
        operator, count = hit
        hits = f"globalThis[Symbol.for('powerx.hits')][{placement}]"
        counted = f"((globalThis[Symbol.for('powerx.hits')] ??= {{}}), {hits} = ({hits} || 0) + 1)"
        test = f"% {count} === 0" if operator == "%" else f"{_JS_OPERATORS[operator]} {count}"
        parts.append(f"({counted} {test})")
    return " && ".join(parts) or None


def _is_code(text: str | None, line: int) -> bool:
    """False for a blank or comment-only line: esbuild may map such a line (the file's
    first one, say) to the module's start, where a breakpoint would stop elsewhere."""
    lines = (text or "").splitlines()
    if not 1 <= line <= len(lines):
        return False
    stripped = lines[line - 1].strip()
    return bool(stripped) and not stripped.startswith(("//", "/*", "*"))


def log_template(message: str) -> str:
    """A log point's message as a JavaScript template literal: ``{expr}`` is filled in."""
    return "`" + message.replace("\\", "\\\\").replace("`", "\\`").replace("{", "${") + "`"


_JS_OPERATORS = {"==": "===", ">=": ">=", ">": ">", "<": "<", "<=": "<="}
