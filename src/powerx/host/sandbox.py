"""OS containment of plugin processes on Linux, with bubblewrap.

Each plugin gets one long-lived sandbox (``bwrap``) in which all its processes run: the
warm Python zygote or Node spare, every generation, and whatever those start. Inside:

- its own network namespace: the only ways out are the ports the simulator forwards
  (its host API, its egress proxy, local services the manifest's ``egress`` names),
  relayed over unix sockets by ``runtimes/sandbox_agent.py``; so ctypes, raw syscalls and
  children with an empty environment find no network;
- its own mount view: the system folders (``/usr``, ``/etc`` ...), the DevKit's own
  install and the plugins' Python environments (at ``/powerx/envs``, with the interpreter
  they are built on) read-only, the plugin's run folder read-only, a private ``/tmp``; the
  developer's home and config, the simulator's state and other plugins' run trees are
  not there at all;
- its own PID namespace: ``/proc`` shows the sandbox's processes only.

Setting it up costs ~0.1 s once per plugin; a reload forks inside it as before. A
generation's listening ports are brought out on fresh loopback ports (``expose``), so the
rest of the simulator talks to ``127.0.0.1:PORT`` as it would without a sandbox.

Where bubblewrap cannot run (not Linux, not installed, user namespaces disabled),
``host/containment.py`` says why; the in-process guards still apply and ``doctor``,
``host status`` and the dashboard say "not contained".
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import socket
import sys
import tempfile
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.bwrap import bwrap_command, outer_pid
from powerx.host.containment import INSTALL_HINT
from powerx.host.launcher import ForkedProcess, pipe_reader
from powerx.runtimes.sandbox_agent import relaying_to

_START_TIMEOUT_S = 20.0
_REQUEST_TIMEOUT_S = 10.0


class Sandbox:
    """One plugin's sandbox: started on first use, closed with the simulator."""

    def __init__(
        self,
        plugin: str,
        run_folder: Path,
        base_env: Mapping[str, str],
        forwards: Iterable[int],
        host_socket: Path | None = None,
        grpc_socket: Path | None = None,
        mounts: Sequence[tuple[Path, Path]] = (),
    ) -> None:
        self.plugin = plugin
        self.host_socket = host_socket
        self.grpc_socket = grpc_socket
        self.mounts = list(mounts)
        self.run_folder = run_folder
        self.base_env = dict(base_env)
        self.forwards = set(forwards)  # asked for
        # Where its processes listen (unix sockets the simulator reaches directly) and where
        # the agent's relays are; bound into the sandbox at the same path.
        self.sockets = Path(tempfile.mkdtemp(prefix="pxs-"))
        self._forwarded: set[int] = set()  # relayed (or being set up): each port once
        self.process: asyncio.subprocess.Process | None = None
        self._control: socket.socket | None = None
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._ready: asyncio.Future[int] | None = None
        self._starting: asyncio.Task[None] | None = None
        self._servers: list[asyncio.Server] = []
        self._exposed: dict[int, tuple[int, asyncio.Server]] = {}  # inner -> (outer, server)
        self._exposing: dict[int, asyncio.Task[int]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.errors: deque[str] = deque(maxlen=20)  # bwrap's and the agent's own stderr

    # -- life --------------------------------------------------------------------------

    async def ready(self) -> None:
        if self._starting is None:
            self._starting = asyncio.create_task(self._start())
        await asyncio.shield(self._starting)

    async def _start(self) -> None:
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise self._failed("bubblewrap (bwrap) is not installed")
        self.run_folder.mkdir(parents=True, exist_ok=True)
        ports = set(self.forwards)  # those asked for later are forwarded by forward()
        self._forwarded |= ports
        for port in ports:
            await self._listen_outward(port)
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._ready = loop.create_future()
        command = bwrap_command(
            bwrap, self.run_folder, self.sockets, self.host_socket, self.grpc_socket, self.mounts
        )
        agent = [sys.executable, "-m", "powerx.runtimes.sandbox_agent"]
        try:
            self.process = await asyncio.create_subprocess_exec(
                *command,
                *agent,
                str(theirs.fileno()),
                str(self.sockets),
                pass_fds=(theirs.fileno(),),
                env=self.base_env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        finally:
            theirs.close()
        ours.setblocking(False)
        self._control = ours
        self._spawn_task(self._read_control())
        self._spawn_task(self._read_errors())
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), _START_TIMEOUT_S)
        except (TimeoutError, RuntimeError) as error:
            await self.close()
            raise self._failed(f"its agent did not start ({error or 'timed out'})") from None
        for port in ports:
            await self._request("forward", port=port)

    def _failed(self, why: str) -> PowerXError:
        tail = "; ".join(self.errors)
        return PowerXError(
            ErrorCode.SANDBOX_FAILED,
            f"The sandbox for {self.plugin} could not start: {why}" + (f": {tail}" if tail else ""),
            f"run `powerx doctor` to check containment; {INSTALL_HINT}; or set "
            "`sandbox: off` in host_simulator.yaml to run plugins uncontained.",
            status=503,
            details={"plugin": self.plugin},
        )

    def _spawn_task(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_errors(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        async for raw in self.process.stderr:
            self.errors.append(raw.decode(errors="replace").rstrip())

    async def _read_control(self) -> None:
        assert self._control is not None and self._ready is not None
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await loop.sock_recv(self._control, 1 << 16)
                if not data:
                    break
                message = json.loads(data)
                if "ready" in message and not self._ready.done():
                    self._ready.set_result(int(message["ready"]))
                elif "exited" in message:
                    future = self._exit_future(int(message["exited"]))
                    if not future.done():
                        future.set_result(int(message["code"]))
                elif "id" in message:
                    reply = self._replies.pop(int(message["id"]), None)
                    if reply is not None and not reply.done():
                        reply.set_result(message)
        except (OSError, ValueError):
            pass
        finally:
            self._fail_all()

    def _fail_all(self) -> None:
        error = RuntimeError("the sandbox ended")
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(error)
        for reply in self._replies.values():
            if not reply.done():
                reply.set_exception(error)
        self._replies.clear()
        for future in self._exits.values():  # its processes went with it
            if not future.done():
                future.set_result(-1)
        self._control = None

    def _exit_future(self, inner: int) -> asyncio.Future[int]:
        if inner not in self._exits:
            self._exits[inner] = asyncio.get_running_loop().create_future()
        return self._exits[inner]

    async def close(self) -> None:
        # Its readers first, and awaited: one left waiting on a socket closed under it
        # was destroyed pending when the loop ended, and printed a traceback at exit.
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._control is not None:
            self._control.close()
            self._control = None
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
        for server in [*self._servers, *(s for _, s in self._exposed.values())]:
            server.close()
        self._exposed.clear()
        shutil.rmtree(self.sockets, ignore_errors=True)

    # -- requests ----------------------------------------------------------------------

    async def _request(self, op: str, fds: Sequence[int] = (), **fields: Any) -> dict[str, Any]:
        if self._control is None:
            raise self._failed("it has ended")
        order_id = next(self._ids)
        reply = asyncio.get_running_loop().create_future()
        self._replies[order_id] = reply
        data = json.dumps({"id": order_id, "op": op, **fields}).encode()
        socket.send_fds(self._control, [data], list(fds))
        try:
            message: dict[str, Any] = await asyncio.wait_for(reply, _REQUEST_TIMEOUT_S)
        except (TimeoutError, RuntimeError) as error:
            raise self._failed(f"its agent did not answer {op} ({error})") from None
        if "error" in message:
            raise self._failed(f"{op} failed: {message['error']}")
        return message

    async def spawn(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: str,
        stdio: Sequence[int],
        extra_fds: Sequence[int] = (),
    ) -> tuple[int, int, asyncio.Future[int]]:
        """Start a process inside; ``"{fd:N}"`` in ``argv`` names ``extra_fds[N]`` there.
        Returns its pid inside, its pid outside (0 if it is gone already) and its exit."""
        await self.ready()
        reply = await self._request(
            "spawn", [*stdio, *extra_fds], argv=list(argv), env=dict(env), cwd=cwd
        )
        inner = int(reply["pid"])
        return inner, self.outer_pid(inner), self._exit_future(inner)

    async def spawn_piped(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: str
    ) -> ForkedProcess:
        """Start a process inside with its stdin, stdout and stderr piped to us."""
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        try:
            _, pid, exited = await self.spawn(argv, env, cwd, (stdin_r, stdout_w, stderr_w))
        except BaseException:
            for fd in (stdin_w, stdout_r, stderr_r):
                os.close(fd)
            raise
        finally:
            for fd in (stdin_r, stdout_w, stderr_w):
                os.close(fd)
        return ForkedProcess(
            pid, stdin_w, await pipe_reader(stdout_r), await pipe_reader(stderr_r), exited
        )

    def outer_pid(self, inner: int) -> int:
        if self.process is None:
            return 0
        return outer_pid(self.process.pid, inner) or 0

    def exit_of(self, inner: int) -> asyncio.Future[int]:
        return self._exit_future(inner)

    # -- ports ---------------------------------------------------------------------------

    async def forward(self, port: int) -> None:
        """Let the plugin reach ``127.0.0.1:port`` of this machine (from now on)."""
        self.forwards.add(port)
        if self._starting is None:
            return  # the start forwards it
        await self.ready()
        if port not in self._forwarded:
            self._forwarded.add(port)
            await self._listen_outward(port)
            await self._request("forward", port=port)

    async def _listen_outward(self, port: int) -> None:
        handle = relaying_to(lambda: asyncio.open_connection("127.0.0.1", port))
        path = self.sockets / f"out-{port}.sock"
        self._servers.append(await asyncio.start_unix_server(handle, str(path)))

    async def expose(self, inner: int) -> int:
        """A loopback port of this machine that reaches ``inner`` inside the sandbox
        (one per inner port, however often and concurrently asked)."""
        if inner in self._exposed:
            return self._exposed[inner][0]
        if inner not in self._exposing:
            self._exposing[inner] = asyncio.create_task(self._expose(inner))
            self._exposing[inner].add_done_callback(lambda _: self._exposing.pop(inner, None))
        return await asyncio.shield(self._exposing[inner])

    async def _expose(self, inner: int) -> int:
        await self._request("expose", port=inner)
        path = str(self.sockets / f"in-{inner}.sock")
        handle = relaying_to(lambda: asyncio.open_unix_connection(path))
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        outer = int(server.sockets[0].getsockname()[1])
        self._exposed[inner] = (outer, server)
        return outer

    async def inner_socket(self, inner: int) -> str:
        """A unix socket (in this sandbox's private folder) that reaches ``inner`` inside
        it, for a debugger with no access control of its own (Delve): unlike
        :meth:`expose`, nothing on this machine's loopback reaches it. Ended by
        :meth:`release_socket`."""
        await self._request("expose", port=inner)
        return str(self.sockets / f"in-{inner}.sock")

    def release_socket(self, inner: int) -> None:
        if self._control is not None:
            self._spawn_task(self._quiet_release(inner))

    def inner_port(self, outer: int) -> int | None:
        """The port inside the sandbox that ``outer`` reaches (what the plugin thinks it
        listens on), or None."""
        return next((inner for inner, (port, _) in self._exposed.items() if port == outer), None)

    def release(self, outer: int) -> None:
        """The generation that listened behind ``outer`` has stopped."""
        for inner, (port, server) in list(self._exposed.items()):
            if port == outer:
                server.close()
                del self._exposed[inner]
                if self._control is not None:
                    self._spawn_task(self._quiet_release(inner))

    async def _quiet_release(self, inner: int) -> None:
        with contextlib.suppress(PowerXError):
            await self._request("release", port=inner)
