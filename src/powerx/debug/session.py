"""One plugin's debug session in the simulator: its breakpoint set, the links to the
debuggers of its live generations (DAP to debugpy, CDP to Node's inspector), and whether
(and where) it is paused.

Every client (the terminal console, an IDE through the DAP proxy, the HTTP API) works on
this one session, so they all see the same breakpoints and the same pause.

A *pause* breakpoint halts the plugin only while a client is attached; with nobody there
to resume it, it behaves like a *snapshot* (locals and stack are captured, the plugin goes
on), so a forgotten breakpoint never hangs a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from powerx.debug.breakpoints import Breakpoint, BreakpointSet, read_log_mark
from powerx.debug.dap import DapError, Message
from powerx.debug.node_link import NodeLink
from powerx.debug.python_link import PythonLink, ReplayResult
from powerx.debug.session_commands import run_command
from powerx.observe.masking import mask_value

PAUSED = "plugin.debug.paused"
RESUMED = "plugin.debug.resumed"
SNAPSHOT = "plugin.debug.snapshot"
BREAKPOINTS = "plugin.debug.breakpoints"
NOTICE = "plugin.debug.notice"

Publish = Callable[[str, dict[str, Any]], object]
Link = PythonLink | NodeLink
OpenLink = Callable[[Callable[[Message], None]], Awaitable[Link]]


@dataclass
class Paused:
    link: Link
    thread_id: int
    reason: str
    file: str | None
    line: int | None
    breakpoint: int | None
    stack: list[dict[str, Any]] = field(default_factory=list)
    code: list[str] = field(default_factory=list)  # the lines around the paused one
    since: float = field(default_factory=time.time)

    def to_dict(self, plugin: str) -> dict[str, Any]:
        return {
            "plugin": plugin,
            "generation": self.link.generation,
            "thread": self.thread_id,
            "reason": self.reason,
            "file": self.file,
            "line": self.line,
            "breakpoint": self.breakpoint,
            "stack": [{k: v for k, v in f.items() if k != "id"} for f in self.stack],
            "code": self.code,
        }


class DebugSession:
    def __init__(
        self,
        plugin: str,
        breakpoints: BreakpointSet,
        publish: Publish,
        on_output: Callable[[int, str], None],
    ) -> None:
        self.plugin = plugin
        self.breakpoints = breakpoints
        self.publish = publish
        self.on_output = on_output
        self.links: dict[int, Link] = {}  # generation number -> link
        self.active_generation: int | None = None
        self.paused: Paused | None = None
        self.clients = 0
        self.snapshots: deque[dict[str, Any]] = deque(maxlen=50)
        self.texts: dict[str, str] = {}  # node: each breakpoint file as last placed
        # An IDE's last setExceptionBreakpoints (Python), replayed like the breakpoints.
        self.exception_filters: Message | None = None
        # And its last setFunctionBreakpoints: functions by name, the same in each generation.
        self.function_breakpoints: Message | None = None
        self.last_replay: ReplayResult | None = None
        self.replays: dict[int, ReplayResult] = {}  # per live generation
        self._tasks: set[asyncio.Task[None]] = set()
        self._proxies: list[Callable[[Message, Link | None], None]] = []

    # -- state -------------------------------------------------------------------------

    def wanted(self) -> bool:
        """Generations start with debugpy only while someone debugs: reloads stay fast."""
        return self.clients > 0 or bool(self.breakpoints.items) or bool(self._proxies)

    @property
    def active_link(self) -> Link | None:
        if self.active_generation is None:
            return None
        return self.links.get(self.active_generation)

    def state(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin,
            "debugging": self.active_link is not None,
            "generation": self.active_generation,
            "clients": self.clients,
            "paused": self.paused.to_dict(self.plugin) if self.paused else None,
            "breakpoints": [bp.model_dump() for bp in self.breakpoints.items],
            "snapshots": list(self.snapshots)[-10:],
            "last_replay_ms": round(self.last_replay.replay_ms, 2) if self.last_replay else None,
        }

    def add_event_listener(self, listener: Callable[[Message, Link | None], None]) -> None:
        """A DAP proxy wants every event of every generation (it filters them itself)."""
        self._proxies.append(listener)

    def remove_event_listener(self, listener: Callable[[Message, Link | None], None]) -> None:
        with contextlib.suppress(ValueError):
            self._proxies.remove(listener)

    # -- generations -------------------------------------------------------------------

    async def attach_generation(self, generation: int, open_link: OpenLink) -> ReplayResult:
        """Connect to a starting generation's debugger and replay the set into it."""
        holder: list[Link] = []

        def on_event(message: Message) -> None:
            if holder:
                holder[0].saw_event(message)
                self._on_event(holder[0], message)

        link = await open_link(on_event)
        holder.append(link)
        self.links[generation] = link
        try:
            result = await link.handshake(
                self.breakpoints.items, self.exception_filters, self.function_breakpoints
            )
        except (DapError, TimeoutError, OSError):
            self.links.pop(generation, None)
            await link.detach()
            raise
        self.breakpoints.save()  # verified flags as this generation saw them
        self.last_replay = result
        self.replays[generation] = result
        return result

    async def generation_flipped(self, previous: int | None, current: int) -> None:
        """Traffic moved to ``current``: tell a paused client, let ``previous`` go on."""
        self.active_generation = current
        if current in self.links:
            self.publish(BREAKPOINTS, self._breakpoints_event())
        paused = self.paused
        if paused is not None and paused.link.generation == previous:
            self.publish(
                NOTICE,
                {
                    "plugin": self.plugin,
                    "generation": current,
                    "message": f"the plugin reloaded while paused: generation {previous} was "
                    f"replaced by {current}; the paused request finishes in {previous}, "
                    f"{len(self.breakpoints.items)} breakpoint(s) carried over",
                },
            )
            self._resumed(paused.link)
        if self._proxies:
            self._tell(None, "invalidated", {"areas": ["threads", "stacks", "variables"]})
        if previous is not None and previous in self.links:
            self._spawn(self._drop(previous))

    async def generation_stopped(self, generation: int) -> None:
        if generation in self.links:
            await self._drop(generation)

    async def _drop(self, generation: int) -> None:
        self.replays.pop(generation, None)
        link = self.links.pop(generation, None)
        if link is None:
            return
        if self.paused is not None and self.paused.link is link:
            self._resumed(link)
        await link.detach()

    # -- events from the generations' debuggers ---------------------------------------

    def _tell(self, link: Link | None, event: str, body: Message) -> None:
        """An event for the IDE proxies (they see the session, not one generation)."""
        message = {"type": "event", "event": event, "body": body}
        for listener in list(self._proxies):
            listener(message, link)

    def _on_event(self, link: Link, message: Message) -> None:
        if message.get("event") == "output":  # an IDE sees a log point's line unmarked
            output = (message.get("body") or {}).get("output")
            if isinstance(output, str) and read_log_mark(output)[0] is not None:
                body = {**message["body"], "output": read_log_mark(output)[1]}
                self._count_log_hit(read_log_mark(output)[0])
                message = {**message, "body": body}
        if message.get("event") not in _SESSION_EVENTS:
            for listener in list(self._proxies):
                listener(message, link)
        event, body = message.get("event"), message.get("body") or {}
        if event == "stopped":
            self._spawn(self._stopped(link, body))
        elif event == "continued" and self.paused is not None and self.paused.link is link:
            self._resumed(link)
        elif event == "output" and body.get("category") in {"console", "stdout", "stderr"}:
            # The plugin's own output is read from its pipes (debugpy does not redirect
            # it), so what arrives here is the debugger's: log point messages.
            text = str(body.get("output", "")).rstrip("\n")
            if text:
                self.on_output(link.generation, text)
        elif event == "breakpoint":
            self._breakpoint_changed(link, body.get("breakpoint") or {})

    def _count_log_hit(self, breakpoint_id: int | None) -> None:
        bp = self.breakpoints.get(breakpoint_id) if breakpoint_id is not None else None
        if bp is not None:
            bp.hits += 1

    def _breakpoint_changed(self, link: Link, entry: Message) -> None:
        ours = link.ids.get(entry.get("id", -1))
        bp = self.breakpoints.get(ours) if ours is not None else None
        if bp is not None and "verified" in entry:
            bp.verified = bool(entry["verified"])
            self.publish(BREAKPOINTS, self._breakpoints_event())

    async def _stopped(self, link: Link, body: Message) -> None:
        thread_id = int(body.get("threadId", 0))
        hit = [link.ids[i] for i in body.get("hitBreakpointIds") or [] if i in link.ids]
        bp = self.breakpoints.get(hit[0]) if hit else None
        try:
            stack = await link.stack(thread_id)
        except (DapError, TimeoutError):
            return
        if body.get("reason") == "step" and not any(f["plugin_code"] for f in stack):
            # A step left the plugin's code (`out` from its outermost frame, `next` past
            # its last line): what is left is the simulator's; the request finishes.
            with contextlib.suppress(DapError, TimeoutError):
                await link.resume("continue", thread_id)
            return
        top = next((f for f in stack if f["plugin_code"]), stack[0] if stack else None)
        file, line = (top["file"], top["line"]) if top else (None, None)
        if bp is not None:
            bp.hits += 1
        if bp is not None and bp.log_message and isinstance(link, NodeLink) and top is not None:
            # V8 has no log points: fill the message in here, log it, go on.
            with contextlib.suppress(DapError, TimeoutError):
                self.on_output(link.generation, await link.log_point(bp.log_message, top["id"]))
            with contextlib.suppress(DapError, TimeoutError):
                await link.resume("continue", thread_id)
            return
        # An attached client (console or IDE) decides when to go on; nobody attached:
        # the breakpoint acts as a snapshot, so a forgotten one never hangs a request.
        watched = self.clients > 0 or bool(self._proxies)
        halt = watched and (bp is None or bp.kind == "pause")
        if not halt:
            await self._snapshot(link, thread_id, bp, stack, top)
            with contextlib.suppress(DapError, TimeoutError):
                await link.resume("continue", thread_id)
            return
        self._tell(link, "stopped", {**body, "hitBreakpointIds": hit})
        self.paused = Paused(
            link,
            thread_id,
            str(body.get("reason")),
            file,
            line,
            bp.id if bp else None,
            stack,
            _code_around(link, file, line),
        )
        self.publish(PAUSED, self.paused.to_dict(self.plugin))

    async def _snapshot(
        self,
        link: Link,
        thread_id: int,
        bp: Breakpoint | None,
        stack: list[dict[str, Any]],
        top: dict[str, Any] | None,
    ) -> None:
        variables: dict[str, str] = {}
        if top is not None:
            with contextlib.suppress(DapError, TimeoutError):
                variables = await link.locals(int(top["id"]))
        plugin_frames = [f for f in stack if f["plugin_code"]] or stack[:1]
        snapshot = {
            "plugin": self.plugin,
            "generation": link.generation,
            "breakpoint": bp.id if bp else None,
            "file": top["file"] if top else None,
            "line": top["line"] if top else None,
            # Snapshots are kept and streamed (dashboard, events): masked like logs.
            "locals": mask_value(variables),
            "stack": [f"{f['file']}:{f['line']} {f['name']}" for f in plugin_frames[:10]],
            "ts": time.time(),
        }
        self.snapshots.append(snapshot)
        self.publish(SNAPSHOT, snapshot)

    # -- commands from clients ---------------------------------------------------------

    def _resumed(self, link: Link) -> None:
        self.paused = None
        self.publish(RESUMED, {"plugin": self.plugin, "generation": link.generation})
        self._tell(link, "continued", {"threadId": 0, "allThreadsContinued": True})

    async def resume(self, command: str, thread_id: int) -> None:
        """continue | next | stepIn | stepOut, from the console or an IDE."""
        paused = self.paused
        link = paused.link if paused is not None else self.active_link
        if link is None:
            raise DapError(command, "no generation is being debugged")
        if paused is not None:
            self._resumed(link)
        await link.resume(command, thread_id)

    async def command(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """continue | next | step | out | stack | locals | eval | set | catch
        (debug/session_commands.py)."""
        return await run_command(self, name, arguments)

    async def set_exception_filters(self, arguments: Message) -> None:
        """Keep an IDE's exception settings and apply them to every live generation."""
        self.exception_filters = arguments
        for link in list(self.links.values()):
            if isinstance(link, PythonLink | NodeLink):
                with contextlib.suppress(DapError, TimeoutError):
                    await link.set_exception_breakpoints(arguments)

    async def set_function_breakpoints(self, arguments: Message) -> list[Message] | None:
        """Keep an IDE's function breakpoints and set them in every live generation; what
        the serving generation made of them (None when none is being debugged yet)."""
        self.function_breakpoints = arguments
        placed: list[Message] | None = None
        for generation, link in list(self.links.items()):
            if isinstance(link, PythonLink):
                with contextlib.suppress(DapError, TimeoutError):
                    body = await link.set_function_breakpoints(arguments)
                    if generation == self.active_generation:
                        placed = list(body.get("breakpoints") or [])
        return placed

    async def push_breakpoints(self, cleared_files: list[str]) -> None:
        """Send the changed set to every live generation (each file's set is replaced)."""
        for link in list(self.links.values()):
            with contextlib.suppress(DapError, TimeoutError):
                await link.set_breakpoints(self.breakpoints.items, cleared_files)
        self.breakpoints.save()
        self.publish(BREAKPOINTS, self._breakpoints_event())

    def _breakpoints_event(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin,
            "generation": self.active_generation,
            "breakpoints": [bp.model_dump() for bp in self.breakpoints.items],
        }

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for generation in list(self.links):
            await self._drop(generation)


# Events the session interprets itself before telling the IDE proxies (or never tells:
# a generation's own lifecycle is hidden, the IDE sees one long-lived debuggee).
_SESSION_EVENTS = frozenset(
    {"stopped", "continued", "initialized", "terminated", "exited", "process", "breakpoint"}
)


def _code_around(link: Link, file: str | None, line: int | None) -> list[str]:
    """Two lines either side of ``line``, numbered, with ``->`` on the line itself."""
    text = link.read_source(file) if file is not None and line is not None else None
    if text is None or line is None:
        return []
    lines = text.splitlines()
    shown = range(max(1, line - 2), min(len(lines), line + 2) + 1)
    return [f"{'->' if n == line else '  '} {n:>4}  {lines[n - 1]}" for n in shown]
