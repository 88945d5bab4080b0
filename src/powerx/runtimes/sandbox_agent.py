"""The simulator's hands inside one plugin's sandbox (started by ``host/sandbox.py``).

The sandbox has its own network namespace: nothing inside can reach the machine's
network, and nothing outside can reach a port inside. This process bridges the two, over
unix sockets in one folder both sides see (``SOCKETS``):

- outward, for each port the simulator forwards (its host API, its egress proxy, a local
  service the manifest names): it listens on ``127.0.0.1:PORT`` inside and relays each
  connection to ``SOCKETS/out-PORT.sock``, where the simulator relays it on to the real
  ``127.0.0.1:PORT``. So a plugin calls the same URLs as outside, and only those;
- inward, for each port a generation listens on (its HTTP server, its debugger): it
  listens on ``SOCKETS/in-PORT.sock`` and relays to ``127.0.0.1:PORT`` inside.

It also starts the sandbox's processes (the Python zygote, Node spares, cold starts),
since only a process inside the namespaces can. Protocol, over a SOCK_SEQPACKET unix
socket inherited as fd ``argv[1]``, one JSON object per message:

- simulator -> agent: ``{"id", "op": "spawn", "argv", "env", "cwd"}`` with the child's
  stdin, stdout, stderr and any extra fds as SCM_RIGHTS (``"{fd:N}"`` in argv names the
  N-th extra fd); ``{"id", "op": "forward" | "expose" | "release", "port"}`` (release
  ends an inward relay once its generation stopped);
- agent -> simulator: ``{"ready": pid}``; ``{"id", "pid"}`` / ``{"id"}`` /
  ``{"id", "error"}``; ``{"exited": pid, "code"}`` when a child it started ends.

Standard library only; it exits when the simulator's end of the socket closes, which
ends the sandbox (bubblewrap's ``--die-with-parent`` covers a simulator that is killed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

_CHUNK = 1 << 16


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


async def relay(
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    """Copy bytes both ways until both sides are done (half-closes pass through)."""
    try:
        await asyncio.gather(_pump(client[0], upstream[1]), _pump(upstream[0], client[1]))
    finally:
        for _, writer in (client, upstream):
            writer.close()


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def relaying_to(
    connect: Callable[[], Awaitable[Streams]],
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A server's connection handler: each connection is relayed to a new ``connect()``
    (closed at once when that fails). asyncio sets TCP_NODELAY on TCP sides itself."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream = await connect()
        except OSError:
            writer.close()
            return
        await relay((reader, writer), upstream)

    return handle


class Agent:
    def __init__(self, control: socket.socket, sockets: Path) -> None:
        self.control = control
        self.sockets = sockets
        self.servers: dict[tuple[str, int], asyncio.Server] = {}
        self.pending: set[tuple[str, int]] = set()  # being set up: asked twice, made once
        self.children: set[asyncio.Task[None]] = set()

    def send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            self.control.send(json.dumps(message).encode())

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        gone = loop.create_future()
        self.control.setblocking(False)
        loop.add_reader(self.control.fileno(), self._on_control, gone)
        self.send({"ready": os.getpid()})
        await gone

    def _on_control(self, gone: asyncio.Future[None]) -> None:
        try:
            data, fds, _, _ = socket.recv_fds(self.control, 1 << 20, 16)
        except BlockingIOError:
            return
        except OSError:
            data, fds = b"", []
        if not data:
            if not gone.done():
                gone.set_result(None)
            return
        message = json.loads(data)
        task = asyncio.ensure_future(self._handle(message, fds))
        self.children.add(task)
        task.add_done_callback(self.children.discard)

    async def _handle(self, message: dict[str, Any], fds: list[int]) -> None:
        reply: dict[str, Any] = {"id": message["id"]}
        try:
            op = message["op"]
            if op == "spawn":
                reply["pid"] = self._spawn(message, fds)
            elif op == "forward":
                await self._forward(int(message["port"]))
            elif op == "expose":
                await self._expose(int(message["port"]))
            elif op == "release":
                self._release(int(message["port"]))
            else:
                reply["error"] = f"unknown op {op!r}"
        except Exception as error:  # the simulator reports it; the agent goes on
            reply["error"] = f"{type(error).__name__}: {error}"
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.send(reply)

    def _spawn(self, message: dict[str, Any], fds: list[int]) -> int:
        stdio, extra = fds[:3], fds[3:]
        argv = [str(a) for a in message["argv"]]
        for index, fd in enumerate(extra):
            argv = [str(fd) if a == f"{{fd:{index}}}" else a for a in argv]
        child = subprocess.Popen(
            argv,
            stdin=stdio[0],
            stdout=stdio[1],
            stderr=stdio[2],
            pass_fds=extra,
            env=dict(message["env"]),
            cwd=message.get("cwd") or None,
            start_new_session=True,
        )
        task = asyncio.ensure_future(self._report_exit(child))
        self.children.add(task)
        task.add_done_callback(self.children.discard)
        return child.pid

    async def _report_exit(self, child: subprocess.Popen[bytes]) -> None:
        code = await asyncio.to_thread(child.wait)
        self.send({"exited": child.pid, "code": code})

    async def _forward(self, port: int) -> None:
        if ("out", port) in self.servers or ("out", port) in self.pending:
            return
        self.pending.add(("out", port))
        target = str(self.sockets / f"out-{port}.sock")
        handle = relaying_to(lambda: asyncio.open_unix_connection(target))
        try:
            self.servers["out", port] = await asyncio.start_server(handle, "127.0.0.1", port)
        finally:
            self.pending.discard(("out", port))

    async def _expose(self, port: int) -> None:
        if ("in", port) in self.servers or ("in", port) in self.pending:
            return
        self.pending.add(("in", port))
        handle = relaying_to(lambda: asyncio.open_connection("127.0.0.1", port))
        path = self.sockets / f"in-{port}.sock"
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        try:
            self.servers["in", port] = await asyncio.start_unix_server(handle, str(path))
        finally:
            self.pending.discard(("in", port))

    def _release(self, port: int) -> None:
        server = self.servers.pop(("in", port), None)
        if server is not None:
            server.close()
            with contextlib.suppress(FileNotFoundError):
                (self.sockets / f"in-{port}.sock").unlink()


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    asyncio.run(Agent(control, Path(sys.argv[2])).serve())


if __name__ == "__main__":
    main()
