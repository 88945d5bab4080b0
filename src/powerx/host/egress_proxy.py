"""The egress proxy every plugin process is pointed at (``HTTP_PROXY``/``HTTPS_PROXY``).

The runtime guards stop the plugin's own code. The proxy is the second line: it covers
what runs outside the guards and honours the proxy variables, such as a ``curl`` or
``pip`` the plugin starts. Each plugin authenticates with its per-generation token (the
proxy URL carries it as the password), so the proxy applies that plugin's manifest
``egress`` list and the production deny list, and refuses everything else with 403 and a
message naming the host and the fix. Each refusal is logged, counted and audited like a
guard's.

It speaks the two proxy forms HTTP clients use: ``CONNECT host:port`` (HTTPS tunnels)
and absolute-URI requests (plain HTTP). No library in the stack offers a small
embeddable forward proxy, so this is the minimum, written here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from powerx.runtimes.egress_guard import EgressPolicy, Verdict, canonical_ip

_MAX_HEAD = 64 * 1024
_PRINTABLE = re.compile(r"[^\x20-\x7e]")
_CONNECT_TIMEOUT_S = 10.0

# (proxy token) -> (plugin id, its policy) or None when the token is unknown
Identify = Callable[[str], tuple[str, EgressPolicy] | None]
OnBlocked = Callable[[str, str, int, str], None]  # plugin, host, port, reason


class EgressProxy:
    def __init__(self, identify: Identify, on_blocked: OnBlocked) -> None:
        self.identify = identify
        self.on_blocked = on_blocked
        self.server: asyncio.Server | None = None
        self.port: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str = "127.0.0.1") -> int:
        self.server = await asyncio.start_server(self._serve, host, 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self.port

    def url_for(self, plugin: str, token: str) -> str:
        return f"http://{plugin}:{token}@127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        try:
            await self._handle(head, reader, writer)
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _handle(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or len(head) > _MAX_HEAD:
            await _answer(writer, 400, "Bad Request", "powerx proxy: malformed request")
            return
        method, target, version = parts
        headers = [line for line in lines[1:] if line]
        caller = self.identify(_token(headers))
        if caller is None:
            await _answer(
                writer,
                407,
                "Proxy Authentication Required",
                "powerx proxy: unknown plugin credential; only plugin processes use this proxy",
            )
            return
        plugin, policy = caller
        host, port = _destination(method, target)
        if host is None:
            await _answer(writer, 400, "Bad Request", f"powerx proxy: cannot route {target!r}")
            return
        verdict = policy.verdict(host, port)
        if verdict is not None:
            await self._refuse(writer, plugin, host, port, verdict)
            return
        try:
            address, verdict = await _checked_address(policy, host, port)
            if verdict is not None:
                await self._refuse(writer, plugin, address, port, verdict)
                return
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(address, port), _CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError) as error:
            await _answer(writer, 502, "Bad Gateway", f"powerx proxy: {host}:{port}: {error}")
            return
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            await writer.drain()
        else:
            path = urlsplit(target)
            origin_form = (path.path or "/") + (f"?{path.query}" if path.query else "")
            kept = [h for h in headers if not h.lower().startswith("proxy-")]
            upstream_writer.write(
                f"{method} {origin_form} {version}\r\n".encode("latin-1")
                + "".join(f"{h}\r\n" for h in kept).encode("latin-1")
                + b"\r\n"
            )
        await _pipe(reader, writer, upstream_reader, upstream_writer)

    async def _refuse(
        self, writer: asyncio.StreamWriter, plugin: str, host: str, port: int, verdict: Verdict
    ) -> None:
        reason, meaning, fix = verdict
        self.on_blocked(plugin, host, port, reason)
        message = f"powerx: egress to {host}:{port} blocked ({meaning}); fix: {fix}"
        # HTTP clients show the status line of a refused CONNECT, rarely the body: the
        # reason phrase carries the message so the plugin sees host and fix.
        await _answer(writer, 403, message, message)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()


async def _checked_address(
    policy: EgressPolicy, host: str, port: int
) -> tuple[str, Verdict | None]:
    """The address to connect to for an allowed ``host``: the first of its addresses the
    policy lets through (a name resolving to a loopback address does not open it), or
    the first refused one and why."""
    if canonical_ip(host) is not None:
        return host, None  # policy.verdict decided on the address itself
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [str(entry[4][0]) for entry in found]
    learnt = policy.learn(host, addresses)
    refused: tuple[str, Verdict | None] = (host, None)
    for address in addresses:
        ip = canonical_ip(address) or address
        verdict = policy.address_verdict(ip, port, learnt)
        if verdict is None:
            return address, None
        if refused[1] is None:
            refused = (ip, verdict)
    return refused


def _token(headers: list[str]) -> str:
    for header in headers:
        name, _, value = header.partition(":")
        if name.strip().lower() == "proxy-authorization":
            scheme, _, encoded = value.strip().partition(" ")
            if scheme.lower() == "basic":
                with contextlib.suppress(ValueError):
                    return base64.b64decode(encoded).decode().partition(":")[2]
    return ""


def _destination(method: str, target: str) -> tuple[str | None, int]:
    if method == "CONNECT":
        host, _, port = target.rpartition(":")
        return (host.strip("[]") or None, int(port)) if port.isdigit() else (None, 0)
    parts = urlsplit(target)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return None, 0
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


async def _answer(writer: asyncio.StreamWriter, status: int, reason: str, text: str) -> None:
    reason = _PRINTABLE.sub("?", reason)[:300]
    body = (text + "\n").encode()
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(ConnectionError):
        await writer.drain()


async def _pipe(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream_writer: asyncio.StreamWriter,
) -> None:
    async def copy(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await source.read(65536):
                target.write(chunk)
                await target.drain()
        with contextlib.suppress(OSError):
            target.write_eof()

    await asyncio.gather(copy(client_reader, upstream_writer), copy(upstream_reader, client_writer))
    upstream_writer.close()
