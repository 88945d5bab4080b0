"""Debug Adapter Protocol: framing and one asyncio connection, usable from either end.

A message is ``Content-Length: N\\r\\n\\r\\n`` followed by N bytes of JSON. The framing is
small enough to write by hand (no maintained Python DAP client library exists; debugpy
ships only the server side). :class:`DapConnection` numbers outgoing messages, matches
responses to requests, and hands events (and, on the server side, requests) to callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Awaitable, Callable
from typing import Any

Message = dict[str, Any]
_HEADER_END = b"\r\n\r\n"
ANSWERED = object()  # what a request handler returns when it has responded itself
_MAX_MESSAGE = 64 * 1024 * 1024


class DapError(Exception):
    """A request failed (``success: false``) or the connection closed before its answer."""

    def __init__(self, command: str, message: str) -> None:
        super().__init__(f"{command}: {message}")
        self.command = command
        self.message = message


def encode(message: Message) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


async def read_message(reader: asyncio.StreamReader) -> Message | None:
    """The next message, or None at end of stream or at anything that is not DAP framing.

    The header is ``Content-Length`` and nothing else (the only field DAP defines, and
    all VS Code and debugpy send). Being strict is what keeps a web page out: a browser
    can send an HTTP request to any port, ``POST / HTTP/1.1`` with a ``Content-Length``
    and a JSON body; read leniently, that would be a DAP request."""
    try:
        header = await reader.readuntil(_HEADER_END)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    length = None
    for line in header[: -len(_HEADER_END)].split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if not colon or name.strip().lower() != b"content-length" or length is not None:
            return None
        if not value.strip().isdigit():
            return None
        length = int(value.strip())
    if length is None or length > _MAX_MESSAGE:
        return None
    try:
        body = await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    message = json.loads(body)
    return message if isinstance(message, dict) else None


class DapConnection:
    """One DAP peer. ``on_event`` gets events, in order and synchronously (it must not wait
    for this peer: the reader is blocked meanwhile); ``on_request`` (server side) gets
    requests and returns the response body (or raises :class:`DapError`)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_event: Callable[[Message], None] | None = None,
        on_request: Callable[[Message], Awaitable[Any]] | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._on_event = on_event
        self._on_request = on_request
        self._seq = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future[Message]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = asyncio.Event()
        self._reading = asyncio.create_task(self._read_forever())

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        on_event: Callable[[Message], None] | None = None,
        timeout: float = 5.0,
    ) -> DapConnection:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, limit=_MAX_MESSAGE), timeout
        )
        return cls(reader, writer, on_event)

    @classmethod
    async def connect_unix(
        cls, path: str, on_event: Callable[[Message], None] | None = None, timeout: float = 5.0
    ) -> DapConnection:
        reader, writer = await asyncio.wait_for(
            asyncio.open_unix_connection(path, limit=_MAX_MESSAGE), timeout
        )
        return cls(reader, writer, on_event)

    def _write(self, message: Message) -> None:
        if self.closed.is_set():
            raise DapError(str(message.get("command", message.get("event"))), "connection closed")
        message["seq"] = next(self._seq)
        self._writer.write(encode(message))

    def send_request(
        self, command: str, arguments: Message | None = None
    ) -> asyncio.Future[Message]:
        """Send a request now; the future resolves to the response message."""
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        message: Message = {"type": "request", "command": command}
        if arguments is not None:
            message["arguments"] = arguments
        self._write(message)
        self._pending[message["seq"]] = (command, future)
        return future

    async def request(
        self, command: str, arguments: Message | None = None, timeout: float = 10.0
    ) -> Message:
        """Send a request and return the response's body; :class:`DapError` on failure."""
        response = await asyncio.wait_for(self.send_request(command, arguments), timeout)
        if not response.get("success", False):
            raise DapError(command, str(response.get("message") or "failed"))
        body = response.get("body")
        return body if isinstance(body, dict) else {}

    def send_event(self, event: str, body: Message | None = None) -> None:
        message: Message = {"type": "event", "event": event}
        if body is not None:
            message["body"] = body
        with contextlib.suppress(DapError):
            self._write(message)

    def respond(self, request: Message, body: Any = None, error: str | None = None) -> None:
        message: Message = {
            "type": "response",
            "request_seq": request.get("seq"),
            "command": request.get("command"),
            "success": error is None,
        }
        if error is not None:
            message["message"] = error
        if body is not None:
            message["body"] = body
        with contextlib.suppress(DapError):
            self._write(message)

    async def _read_forever(self) -> None:
        try:
            while (message := await read_message(self._reader)) is not None:
                kind = message.get("type")
                if kind == "response":
                    entry = self._pending.pop(int(message.get("request_seq", -1)), None)
                    if entry is not None and not entry[1].done():
                        entry[1].set_result(message)
                elif kind == "event" and self._on_event is not None:
                    self._on_event(message)  # synchronous: it must not wait on this peer
                elif kind == "request" and self._on_request is not None:
                    self._spawn(self._answer(message))
        except (ValueError, ConnectionError):
            pass
        finally:
            self.closed.set()
            for command, future in self._pending.values():
                if not future.done():
                    future.set_exception(DapError(command, "connection closed"))
            self._pending.clear()

    async def _answer(self, request: Message) -> None:
        assert self._on_request is not None
        try:
            body = await self._on_request(request)
        except DapError as error:
            self.respond(request, error=error.message)
        else:
            if body is not ANSWERED:
                self.respond(request, body)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
        self._reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reading
        self.closed.set()
