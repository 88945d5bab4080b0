"""A stable inspector endpoint per Node plugin, for VS Code's js-debug (or Chrome DevTools).

Each generation has its own inspector on a random port. This endpoint stays on one port
(the plugin's, from :class:`~powerx.debug.dap_proxy.PortBook`): ``/json/list`` names one
target, and a WebSocket to it is piped to the serving generation's inspector. When the
generation is replaced the IDE's socket is closed; js-debug, attached with
``"restart": true``, reconnects at once, reaches the new generation and sends its
breakpoints again. The simulator's own session (which replays the set the console and
the HTTP API manage) is separate: Node's inspector takes several sessions at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import websockets
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from powerx.debug.dap import Message
from powerx.debug.node_link import NodeLink
from powerx.debug.session import DebugSession, Link


class InspectorProxy:
    def __init__(
        self,
        plugin: str,
        session: DebugSession,
        attach: Callable[[], Awaitable[Any]],
        detach: Callable[[], Awaitable[None]],
    ) -> None:
        self.plugin = plugin
        self.session = session
        self.attach = attach
        self.detach = detach
        self.server: Server | None = None
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.connections: set[ServerConnection] = set()
        self._closing: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        self.host = host
        options: dict[str, Any] = {
            "process_request": self._http,
            "max_size": None,
            "compression": None,
            "ping_interval": None,
        }
        try:
            self.server = await serve(self._pipe, host, port, **options)
        except OSError:
            self.server = await serve(self._pipe, host, 0, **options)
        self.port = int(next(iter(self.server.sockets)).getsockname()[1])
        return self.port

    def _target(self) -> dict[str, str]:
        address = f"{self.host}:{self.port}"
        return {
            "id": self.plugin,
            "type": "node",
            "title": f"PowerX plugin {self.plugin}",
            "description": "the serving generation (stable across reloads)",
            "url": f"powerx://{self.plugin}",
            "webSocketDebuggerUrl": f"ws://{address}/{self.plugin}",
            "devtoolsFrontendUrl": f"devtools://devtools/bundled/js_app.html?ws={address}/{self.plugin}",
        }

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        """Answer the discovery requests a debugger makes before the WebSocket."""
        path = request.path.rstrip("/")
        if path in {"/json", "/json/list"}:
            body: object = [self._target()]
        elif path == "/json/version":
            body = {"Browser": "PowerX simulator (node)", "Protocol-Version": "1.1"}
        else:
            return None
        headers = Headers({"Content-Type": "application/json"})
        return Response(200, "OK", headers, json.dumps(body).encode())

    async def _pipe(self, ide: ServerConnection) -> None:
        await self.attach()  # the first IDE turns the debugger on (the generation restarts)
        link = self._serving()
        if link is None:
            await ide.close(1011, "the plugin has no generation being debugged yet")
            await self.detach()
            return
        self.connections.add(ide)
        if len(self.connections) == 1:
            self.session.add_event_listener(self._on_session_event)
        try:
            async with websockets.connect(
                link.url, max_size=None, compression=None, ping_interval=None
            ) as inspector:
                await _relay(ide, inspector)
        except (OSError, websockets.WebSocketException):
            pass
        finally:
            self.connections.discard(ide)
            if not self.connections:
                self.session.remove_event_listener(self._on_session_event)
            await ide.close()
            await self.detach()

    def _serving(self) -> NodeLink | None:
        link = self.session.active_link
        return link if isinstance(link, NodeLink) else None

    def _on_session_event(self, message: Message, link: Link | None) -> None:
        """A swap: the IDE's socket belongs to the old process; close it so js-debug
        reconnects (``restart``) to the generation that serves now."""
        if message.get("event") == "invalidated":
            for ide in list(self.connections):
                task = asyncio.create_task(ide.close(1012, "the plugin reloaded"))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        for ide in list(self.connections):
            with contextlib.suppress(Exception):
                await ide.close()
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()


async def _relay(ide: ServerConnection, inspector: Any) -> None:
    async def copy(source: Any, target: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in source:
                await target.send(message)

    tasks = [
        asyncio.create_task(copy(ide, inspector)),
        asyncio.create_task(copy(inspector, ide)),
    ]
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
