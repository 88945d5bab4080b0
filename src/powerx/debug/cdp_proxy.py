"""A stable inspector endpoint per Node plugin, for VS Code's js-debug (or Chrome DevTools).

Each generation has its own inspector on a random port. This endpoint stays on one port
(the plugin's, from :class:`~powerx.debug.dap_proxy.PortBook`): a WebSocket to
``/<secret>/<plugin>`` is piped to the serving generation's inspector, and
``/<secret>/json/list`` names that one target. When the generation is replaced the
IDE's socket is closed; js-debug, attached with ``"restart": true``, reconnects at once,
reaches the new generation and sends its breakpoints again. The simulator's own session
(which replays the set the console and the HTTP API manage) is separate: Node's inspector
takes several sessions at a time.

So that the first requests of a new generation do not slip past the IDE's breakpoints
while it reconnects, the IDE's breakpoint requests are mirrored into the simulator's set
(:mod:`powerx.debug.cdp_mirror`), which every generation has before it serves; and an
IDE closed for a reload stays attached for ``reconnect_grace_s`` (so a pause waits for
it): it comes back within ~200 ms, and if it does not, it is detached and a paused
request goes on.

Only the developer's tools may attach (see :mod:`powerx.debug.ide_access`): a request
with a foreign ``Host`` or a web page's ``Origin``, or without the secret, is refused
with 403 before any upgrade, and nothing is attached or restarted for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import websockets
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from powerx.debug.cdp_mirror import BreakpointMirror, MirrorBook, Place, Unplace
from powerx.debug.dap import Message
from powerx.debug.ide_access import new_secret, origin_allowed, secret_matches
from powerx.debug.node_link import NodeLink
from powerx.debug.session import DebugSession, Link
from powerx.error_codes import ErrorCode
from powerx.local_names import local_host

_VERSION = {"Browser": "PowerX simulator (node)", "Protocol-Version": "1.1"}
# At DEBUG, websockets logs each request line, and the path holds the secret: this logger
# never goes below INFO, whatever the root logger is set to.
_HANDSHAKE_LOG = logging.getLogger("powerx.debug.inspector_proxy")
_HANDSHAKE_LOG.setLevel(logging.INFO)
RELOAD_CLOSE = 1012  # "service restart": js-debug attached with `restart` reconnects
RECONNECT_GRACE_S = 5.0  # js-debug's default restart: 50 ms delay, retried


class InspectorProxy:
    def __init__(
        self,
        plugin: str,
        session: DebugSession,
        attach: Callable[[], Awaitable[Any]],
        detach: Callable[[], Awaitable[None]],
        place: Place | None = None,
        unplace: Unplace | None = None,
        reconnect_grace_s: float = RECONNECT_GRACE_S,
    ) -> None:
        """``place``/``unplace`` mirror the IDE's breakpoints into the simulator's set;
        ``reconnect_grace_s``: how long an IDE closed for a reload stays attached."""
        self.plugin = plugin
        self.session = session
        self.attach = attach
        self.detach = detach
        self.place = place
        self.unplace = unplace
        self.reconnect_grace_s = reconnect_grace_s
        self.secret = new_secret()
        self.server: Server | None = None
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.connections: set[ServerConnection] = set()
        self.book = MirrorBook()
        self._closing: set[asyncio.Task[None]] = set()
        self._reloaded: set[ServerConnection] = set()  # closed by us for a reload
        # One per IDE closed for a reload and not back yet: it is still attached.
        self._awaited: list[asyncio.TimerHandle] = []

    async def start(self, host: str, port: int) -> int:
        self.host = host
        options: dict[str, Any] = {
            "process_request": self._http,
            "max_size": None,
            "compression": None,
            "ping_interval": None,
            "logger": _HANDSHAKE_LOG,
        }
        try:
            self.server = await serve(self._pipe, host, port, **options)
        except OSError:
            self.server = await serve(self._pipe, host, 0, **options)
        self.port = int(next(iter(self.server.sockets)).getsockname()[1])
        return self.port

    def _target(self) -> dict[str, str]:
        address = f"{self.host}:{self.port}/{self.secret}/{self.plugin}"
        return {
            "id": self.plugin,
            "type": "node",
            "title": f"PowerX plugin {self.plugin}",
            "description": "the serving generation (stable across reloads)",
            "url": f"powerx://{self.plugin}",
            "webSocketDebuggerUrl": f"ws://{address}",
            "devtoolsFrontendUrl": f"devtools://devtools/bundled/js_app.html?ws={address}",
        }

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse what is not the developer's tool, then answer discovery requests; None
        lets the WebSocket handshake go on (only ``/<secret>/<plugin>`` gets there)."""
        hosts = request.headers.get_all("Host")
        if len(hosts) != 1 or not local_host(hosts[0]):
            return _refused(
                "host_forbidden",
                "The debug port answers to Host 127.0.0.1 or localhost only.",
                "attach with the URL `powerx debug vscode` prints (a page on another site "
                "may be trying to reach the debugger through DNS rebinding).",
            )
        if not all(origin_allowed(origin) for origin in request.headers.get_all("Origin")):
            return _refused(
                "origin_forbidden",
                "A web page may not open the debug port.",
                "attach from VS Code or Chrome DevTools with the URL `powerx debug vscode` prints.",
            )
        path = request.path.partition("?")[0]
        if path.rstrip("/") == "/json/version":  # names the program; nothing to hide
            return _json(200, "OK", _VERSION)
        secret, _, rest = path.lstrip("/").partition("/")
        if not secret_matches(secret, self.secret):
            return _refused(
                "debug_secret_required",
                "The debug port needs this simulator run's secret in its URL.",
                f"attach with the URL `powerx debug vscode {self.plugin}` prints (the secret "
                "changes each time the simulator starts).",
            )
        rest = rest.rstrip("/")
        if rest in {"json", "json/list"}:
            return _json(200, "OK", [self._target()])
        if rest == "json/version":
            return _json(200, "OK", _VERSION)
        if rest != self.plugin:
            return _json(
                404, "Not Found", {"error": ErrorCode.NOT_FOUND, "message": "No such target."}
            )
        return None

    async def _pipe(self, ide: ServerConnection) -> None:
        if self._awaited:  # an IDE back after a reload: it never stopped being attached
            self._awaited.pop(0).cancel()
        else:
            await self.attach()  # the first IDE turns the debugger on (a restart)
        link = self._serving()
        if link is None:
            await ide.close(1011, "the plugin has no generation being debugged yet")
            await self.detach()
            return
        self.connections.add(ide)
        if len(self.connections) == 1:
            self.session.add_event_listener(self._on_session_event)
        mirror = (
            BreakpointMirror(link, self.book, self.place, self.unplace)
            if self.place is not None and self.unplace is not None
            else None
        )
        try:
            async with websockets.connect(
                link.url, max_size=None, compression=None, ping_interval=None
            ) as inspector:
                await _relay(ide, inspector, mirror)
        except (OSError, websockets.WebSocketException):
            pass
        finally:
            self.connections.discard(ide)
            if not self.connections:
                self.session.remove_event_listener(self._on_session_event)
            await ide.close()
            if mirror is not None:
                await mirror.close()
            if ide in self._reloaded:
                self._reloaded.discard(ide)
                self._await_reconnect()
            else:
                await self.detach()

    def _await_reconnect(self) -> None:
        """Keep a reloaded IDE attached until it is back, or for ``reconnect_grace_s``."""

        def give_up() -> None:
            if handle in self._awaited:
                self._awaited.remove(handle)
                task = asyncio.ensure_future(self.detach())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

        handle = asyncio.get_running_loop().call_later(self.reconnect_grace_s, give_up)
        self._awaited.append(handle)

    def _serving(self) -> NodeLink | None:
        link = self.session.active_link
        return link if isinstance(link, NodeLink) else None

    def _on_session_event(self, message: Message, link: Link | None) -> None:
        """A swap: the IDE's socket belongs to the old process; close it so js-debug
        reconnects (``restart``) to the generation that serves now."""
        if message.get("event") == "invalidated":
            for ide in list(self.connections):
                self._reloaded.add(ide)
                task = asyncio.create_task(ide.close(RELOAD_CLOSE, "the plugin reloaded"))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        for handle in self._awaited:
            handle.cancel()
        self._awaited.clear()
        for ide in list(self.connections):
            with contextlib.suppress(Exception):
                await ide.close()
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()


def _json(status: int, reason: str, body: object) -> Response:
    data = json.dumps(body).encode()
    headers = Headers(
        {
            "Content-Type": "application/json",
            "Content-Length": str(len(data)),
            "Cache-Control": "no-store",
        }
    )
    return Response(status, reason, headers, data)


def _refused(code: str, message: str, fix: str) -> Response:
    return _json(403, "Forbidden", {"error": code, "message": message, "fix": fix})


async def _relay(ide: ServerConnection, inspector: Any, mirror: BreakpointMirror | None) -> None:
    async def copy(source: Any, target: Any, watch: Callable[[str | bytes], None] | None) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in source:
                if watch is not None:
                    watch(message)
                await target.send(message)

    tasks = [
        asyncio.create_task(copy(ide, inspector, mirror.from_ide if mirror else None)),
        asyncio.create_task(copy(inspector, ide, mirror.from_inspector if mirror else None)),
    ]
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
