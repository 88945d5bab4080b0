"""A DAP server on one stable port per Python plugin, for VS Code (or any DAP client).

The IDE attaches once and keeps its session across every reload. Behind the proxy, each
generation has its own debugpy, reached through the simulator's :class:`DebugSession`:

- ``setBreakpoints`` updates the simulator's breakpoint set (one file's set at a time,
  as DAP says) and answers with the simulator's stable ids; every new generation gets the
  set replayed before it takes traffic, so the IDE never has to resend it.
- Inspection and stepping requests go to the generation that is paused (or serving);
  paths are translated between the plugin folder (what the IDE shows) and the
  generation's folder (what debugpy sees).
- A generation's own ``terminated``/``exited`` never reach the IDE; on a swap the IDE
  gets ``invalidated`` (thread, frame and variable ids belonged to the old process).

Only the developer's tools may drive it (see :mod:`powerx.debug.ide_access`). Before a
connection has sent ``attach`` (or ``launch``) with this port's secret in its arguments
(``powerxToken``, which launch.json carries), the proxy answers ``initialize`` and
nothing else: any other request ends the connection unanswered, and a wrong secret gets
an error and the connection closed. ``initialized`` is sent once the attach is accepted,
so a client (VS Code, DebugClient) sends its breakpoints after it, as DAP allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from powerx.debug.breakpoints import BreakpointSpec
from powerx.debug.dap import ANSWERED, DapConnection, DapError, Message
from powerx.debug.ide_access import SECRET_ARGUMENT, new_secret, secret_matches
from powerx.debug.python_link import PythonLink
from powerx.debug.session import DebugSession, Link
from powerx.debug.simulator_code import is_simulator_file

FIRST_PORT = 5679  # debugpy's customary port is 5678; ours follow it
_RESUME = frozenset({"continue", "next", "stepIn", "stepOut"})
_FORWARDED = frozenset(
    {
        "threads",
        "stackTrace",
        "scopes",
        "variables",
        "evaluate",
        "setVariable",
        "setExpression",
        "source",
        "pause",
        "exceptionInfo",
        "completions",
        "loadedSources",
        "modules",
    }
)
CAPABILITIES: Message = {
    "supportsConfigurationDoneRequest": True,
    "supportsConditionalBreakpoints": True,
    "supportsHitConditionalBreakpoints": True,
    "supportsFunctionBreakpoints": True,
    "supportsLogPoints": True,
    "supportsEvaluateForHovers": True,
    "supportsSetVariable": True,
    "supportsExceptionInfoRequest": True,
    "supportsLoadedSourcesRequest": False,
    "supportsTerminateRequest": False,
    # debugpy's filters; the proxy keeps the IDE's choice and replays it per generation.
    "exceptionBreakpointFilters": [
        {"filter": "raised", "label": "Raised Exceptions", "default": False},
        {"filter": "uncaught", "label": "Uncaught Exceptions", "default": True},
        {"filter": "userUnhandled", "label": "User Uncaught Exceptions", "default": False},
    ],
}


class PortBook:
    """Which port each plugin's proxy listens on, kept in ``.powerx/debug/ports.json`` so
    a ``launch.json`` written once keeps working after restarts."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return (
            {k: v for k, v in data.items() if isinstance(v, int)} if isinstance(data, dict) else {}
        )

    def port_for(self, plugin: str) -> int:
        ports = self._read()
        if plugin in ports:
            return ports[plugin]
        port = max([FIRST_PORT - 1, *ports.values()]) + 1
        ports[plugin] = port
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(ports, indent=1), encoding="utf-8")
        return port


class DapProxy:
    """The listening socket of one plugin; each IDE connection gets an :class:`IdeClient`."""

    def __init__(
        self,
        session: DebugSession,
        source_dir: Callable[[], Path],
        attach: Callable[[], Awaitable[Any]],
        detach: Callable[[], Awaitable[None]],
        set_file: Callable[[str, list[BreakpointSpec]], Awaitable[list[Any]]],
    ) -> None:
        self.session = session
        self.source_dir = source_dir
        self.attach = attach
        self.detach = detach
        self.set_file = set_file
        self.secret = new_secret()
        self.server: asyncio.Server | None = None
        self.port: int | None = None
        self.clients: set[IdeClient] = set()

    async def start(self, host: str, port: int) -> int:
        try:
            self.server = await asyncio.start_server(self._accept, host, port)
        except OSError:
            # The remembered port is taken (another tool): any free one still works.
            self.server = await asyncio.start_server(self._accept, host, 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self.port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = IdeClient(self, reader, writer)
        self.clients.add(client)
        try:
            await client.connection.closed.wait()
        finally:
            self.clients.discard(client)
            await client.closed()
            # The peer left, or sent what is not DAP (an HTTP request): hang up.
            await client.connection.close()

    async def close(self) -> None:
        for client in list(self.clients):
            await client.connection.close()
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()


class IdeClient:
    def __init__(
        self, proxy: DapProxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.proxy = proxy
        self.session = proxy.session
        self.authorized = False  # attach (or launch) brought the port's secret
        self.attached = False
        self.connection = DapConnection(reader, writer, on_request=self._handle)

    # -- paths -------------------------------------------------------------------------

    def _plugin_file(self, path: str | None) -> str | None:
        """The plugin-relative name of a path the IDE sent (None outside the plugin)."""
        if not path:
            return None
        try:
            return Path(path).resolve().relative_to(self.proxy.source_dir().resolve()).as_posix()
        except ValueError:
            return None

    def _to_ide(self, link: PythonLink, value: Any) -> Any:
        """Rewrite every ``source.path`` of a generation into the plugin folder."""
        if isinstance(value, dict):
            out = {k: self._to_ide(link, v) for k, v in value.items()}
            source = out.get("source")
            if isinstance(source, dict) and isinstance(source.get("path"), str):
                relative = link.local(source["path"])
                if relative is not None:
                    source["path"] = str(self.proxy.source_dir() / relative)
            return out
        if isinstance(value, list):
            return [self._to_ide(link, item) for item in value]
        return value

    def _to_generation(self, link: PythonLink, arguments: Message) -> Message:
        """Rewrite a ``source.path`` the IDE sent into the generation's folder."""
        source = arguments.get("source")
        if isinstance(source, dict) and isinstance(source.get("path"), str):
            relative = self._plugin_file(source["path"])
            if relative is not None:
                return {**arguments, "source": {**source, "path": link.remote(relative)}}
        return arguments

    def _target(self) -> PythonLink:
        paused = self.session.paused
        link = paused.link if paused is not None else self.session.active_link
        if not isinstance(link, PythonLink):
            raise DapError("request", "the plugin has no generation being debugged yet")
        return link

    # -- requests ----------------------------------------------------------------------

    async def _handle(self, request: Message) -> Any:
        command = str(request.get("command"))
        arguments = request.get("arguments") or {}
        if not self.authorized:
            # Decided before any await: requests are handled concurrently, and the next
            # one must already see whether this attach was let in.
            return await self._before_attach(request, command, arguments)
        if command == "initialize":
            return CAPABILITIES
        if command in {"attach", "launch"}:
            if not self.attached:
                self.attached = True
                await self.proxy.attach()
            return {}
        if command == "setBreakpoints":
            return await self._set_breakpoints(arguments)
        if command == "setExceptionBreakpoints":
            await self.session.set_exception_filters(dict(arguments))
            return {}
        if command == "setFunctionBreakpoints":
            return await self._set_function_breakpoints(arguments)
        if command == "configurationDone":
            paused = self.session.paused
            if paused is not None:  # already paused when the IDE arrived: show it
                body = {"reason": "breakpoint", "threadId": paused.thread_id}
                self.connection.send_event("stopped", body)
            return {}
        if command in {"disconnect", "terminate"}:
            await self._leave()
            return {}
        if command in _RESUME:
            await self.session.resume(command, int(arguments.get("threadId", 0)))
            return {"allThreadsContinued": True} if command == "continue" else {}
        if command in _FORWARDED:
            link = self._target()
            body = await link.dap.request(command, self._to_generation(link, arguments))
            if command == "stackTrace":
                body = _without_simulator_frames(body)
            return self._to_ide(link, body)
        raise DapError(command, f"'{command}' is not supported by the PowerX proxy")

    async def _before_attach(self, request: Message, command: str, arguments: Any) -> Any:
        """``initialize``, then ``attach`` with the secret; anything else ends the
        connection (unanswered, so a stranger learns nothing about the plugin)."""
        if command == "initialize":
            return CAPABILITIES
        if command not in {"attach", "launch"}:
            await self.connection.close()
            return ANSWERED
        presented = arguments.get(SECRET_ARGUMENT) if isinstance(arguments, dict) else None
        if not secret_matches(presented, self.proxy.secret):
            self.connection.respond(
                request,
                error=f"the debug port needs this simulator run's secret ('{SECRET_ARGUMENT}' "
                "in the attach configuration; it changes each time the simulator starts): "
                f"run `powerx debug vscode {self.session.plugin}` and use the configuration "
                "it prints",
            )
            await self.connection.close()
            return ANSWERED
        self.authorized = True
        self.session.add_event_listener(self._on_session_event)
        # From here the client may configure (breakpoints, exception filters ...).
        self.connection.send_event("initialized")
        self.attached = True
        await self.proxy.attach()
        return {}

    async def _set_function_breakpoints(self, arguments: Message) -> Message:
        """Kept by the session and set in each new generation, like exception settings.
        debugpy numbers them anew in each generation, so no ids are passed on."""
        wanted = arguments.get("breakpoints") or []
        placed = await self.session.set_function_breakpoints(dict(arguments))
        if placed is None:
            message = "set when the plugin's next generation starts under the debugger"
            return {"breakpoints": [{"verified": False, "message": message} for _ in wanted]}
        return {"breakpoints": [{"verified": bool(entry.get("verified"))} for entry in placed]}

    async def _set_breakpoints(self, arguments: Message) -> Message:
        source = arguments.get("source") or {}
        file = self._plugin_file(source.get("path"))
        wanted = arguments.get("breakpoints") or []
        if file is None:
            message = "this file is not part of the plugin the simulator runs"
            return {
                "breakpoints": [
                    {"verified": False, "message": message, "line": b.get("line")} for b in wanted
                ]
            }
        specs = [
            BreakpointSpec(
                file=file,
                line=int(entry["line"]),
                condition=entry.get("condition") or None,
                hit_condition=entry.get("hitCondition") or None,
                log_message=entry.get("logMessage") or None,
            )
            for entry in wanted
            if isinstance(entry, dict) and isinstance(entry.get("line"), int)
        ]
        placed = await self.proxy.set_file(file, specs)
        return {
            "breakpoints": [
                {
                    "id": bp.id,
                    "verified": bp.verified,
                    "line": bp.line,
                    "message": bp.message,
                    "source": {"path": str(self.proxy.source_dir() / bp.file)},
                }
                for bp in placed
            ]
        }

    # -- events ------------------------------------------------------------------------

    def _on_session_event(self, message: Message, link: Link | None) -> None:
        if not self.attached:
            return
        body = message.get("body") or {}
        if isinstance(link, PythonLink):
            body = self._to_ide(link, body)
        self.connection.send_event(str(message.get("event")), body)

    async def _leave(self) -> None:
        self.session.remove_event_listener(self._on_session_event)
        if self.attached:
            self.attached = False
            await self.proxy.detach()

    async def closed(self) -> None:
        await self._leave()


def _without_simulator_frames(body: Message) -> Message:
    """The shim's frames are not the developer's: the IDE never sees them."""
    frames = body.get("stackFrames") or []
    kept = [f for f in frames if not is_simulator_file((f.get("source") or {}).get("path"))]
    total = body.get("totalFrames")
    if isinstance(total, int):
        return {**body, "stackFrames": kept, "totalFrames": total - (len(frames) - len(kept))}
    return {**body, "stackFrames": kept}
