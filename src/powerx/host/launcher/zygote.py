"""The zygote launcher: Python generations forked from a warm parent that has the server
stack (and the plugin's third-party modules) imported; the parent is
``runtimes/zygote.py``, this is the simulator's side of it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import socket
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from powerx.host.launcher.cold import ColdLauncher
from powerx.host.launcher.process import (
    ForkedProcess,
    LaunchSpec,
    PluginProcess,
    ended_stream,
    pipe_reader,
    succeeded,
)
from powerx.host.python_runtime import PythonRuntime, devkit_runtime
from powerx.runtimes import WARM_ENV

if TYPE_CHECKING:
    from powerx.host.sandbox import Sandbox

# An environment variable holds at most 128 KiB (Linux): past that the zygote would not
# start. Packages before their submodules, so what is cut is the least of it.
_WARM_MAX_CHARS = 64 * 1024


def _warm_list(names: Collection[str]) -> str:
    kept: list[str] = []
    size = 2
    for name in sorted(names, key=lambda n: (n.count("."), n)):
        size += len(name) + 4
        if size > _WARM_MAX_CHARS:
            break
        kept.append(name)
    return json.dumps(sorted(kept))


class _Zygote:
    """One warm parent for one Python runtime (an interpreter and what it sees)."""

    def __init__(
        self,
        python: PythonRuntime,
        warm: Collection[str],
        base_env: Mapping[str, str],
        cwd: str,
        sandbox: Sandbox | None,
    ) -> None:
        self.python = python
        self.env = {**base_env, **python.process_env()}
        if warm:
            self.env[WARM_ENV] = _warm_list(warm)
        self.cwd = cwd
        self.sandbox = sandbox
        self.retired = False  # another runtime serves new generations; closes when idle
        self._process: asyncio.subprocess.Process | ForkedProcess | None = None
        self._sock: socket.socket | None = None
        self._ready: asyncio.Future[None] | None = None
        self._pending: dict[int, asyncio.Future[int]] = {}
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None

    def warm(self) -> bool:
        return succeeded(self._ready)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._ready = loop.create_future()
        command = self.python.command("powerx.runtimes.zygote")
        try:
            if self.sandbox is not None:
                self._process = await self._start_in_sandbox(self.sandbox, command, theirs)
            else:
                self._process = await asyncio.create_subprocess_exec(
                    *command,
                    str(theirs.fileno()),
                    pass_fds=(theirs.fileno(),),
                    env=self.env,
                    cwd=self.cwd,
                    stdin=asyncio.subprocess.DEVNULL,
                    start_new_session=True,
                )
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self._reader = asyncio.create_task(self._read())

    async def _start_in_sandbox(
        self, sandbox: Sandbox, command: list[str], theirs: socket.socket
    ) -> ForkedProcess:
        """The zygote runs inside the plugin's sandbox (so do the generations it forks);
        its own output goes where the simulator's goes, as it does outside."""
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            _, pid, exited = await sandbox.spawn(
                [*command, "{fd:0}"], self.env, self.cwd, (null, 1, 2), [theirs.fileno()]
            )
        finally:
            os.close(null)
        null_in = os.open(os.devnull, os.O_WRONLY)
        return ForkedProcess(pid, null_in, ended_stream(), ended_stream(), exited)

    async def _read(self) -> None:
        assert self._sock is not None and self._ready is not None
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await loop.sock_recv(self._sock, 1 << 16)
                if not data:
                    break
                message = json.loads(data)
                if "ready" in message and not self._ready.done():
                    self._ready.set_result(None)
                elif "exited" in message:
                    self._exits.setdefault(message["exited"], loop.create_future())
                    future = self._exits.pop(message["exited"])
                    if not future.done():
                        future.set_result(int(message["code"]))
                    if self.retired and not self._exits and not self._pending:
                        self._closing = asyncio.create_task(self.close())
                elif "id" in message:
                    self._pending.pop(message["id"]).set_result(int(message["pid"]))
        except (OSError, ValueError):
            pass
        finally:
            self._fail_all(RuntimeError("the zygote exited"))

    def _fail_all(self, error: Exception) -> None:
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(error)
            self._ready.exception()  # seen: a zygote retired before it was used is no error
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        # Children of a dead zygote are orphans we can no longer reap: treat them as gone.
        for future in self._exits.values():
            if not future.done():
                future.set_result(-1)
        self._sock = None

    @property
    def alive(self) -> bool:
        return (
            self._sock is not None
            and self._process is not None
            and self._process.returncode is None
        )

    @property
    def idle(self) -> bool:
        """No generation of its own runs any more (or is being forked)."""
        return not self._pending and all(f.done() for f in self._exits.values())

    async def fork(self, spec: LaunchSpec) -> ForkedProcess | None:
        """A generation forked from here, or None if this zygote cannot give one."""
        assert self._ready is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), 30)
        except Exception:
            return None
        if not self.alive:
            return None
        assert self._sock is not None
        loop = asyncio.get_running_loop()
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        order_id = next(self._ids)
        forked: asyncio.Future[int] = loop.create_future()
        self._pending[order_id] = forked
        order = {"id": order_id, "argv": spec.argv, "env": spec.env}
        try:
            socket.send_fds(self._sock, [json.dumps(order).encode()], [stdin_r, stdout_w, stderr_w])
        finally:
            for fd in (stdin_r, stdout_w, stderr_w):
                os.close(fd)
        try:
            pid = await asyncio.wait_for(forked, 10)
        except Exception:
            for fd in (stdin_w, stdout_r, stderr_r):
                os.close(fd)
            return None
        exited = self._exits.setdefault(pid, loop.create_future())
        if self.sandbox is not None:  # the zygote speaks of pids inside the sandbox
            pid = self.sandbox.outer_pid(pid)
        return ForkedProcess(
            pid, stdin_w, await pipe_reader(stdout_r), await pipe_reader(stderr_r), exited
        )

    def fork_ahead(self) -> None:
        """Have the zygote fork the next generation's process now, to wait for its
        order (it takes its copies of the inherited memory meanwhile)."""
        if self.alive and succeeded(self._ready):
            assert self._sock is not None
            with contextlib.suppress(OSError):
                self._sock.send(b'{"prefork": true}')

    def import_modules(self, names: Collection[str]) -> None:
        """Have the zygote import these too (it does so between two forks)."""
        if self.alive and names:
            assert self._sock is not None
            with contextlib.suppress(OSError):
                self._sock.send(json.dumps({"warm": sorted(names)}).encode())

    async def close(self) -> None:
        # The reader first: cancelling a pending sock_recv unregisters its fd from the
        # event loop, which by then could be another zygote's socket's, reusing the number.
        if self._reader is not None:
            self._reader.cancel()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._process.wait(), 3)


class ZygoteLauncher:
    """Forks Python generations from warm parents (see ``runtimes/zygote.py``), one per
    Python runtime in use: when a plugin's dependencies change, a zygote starts in the new
    environment while the generations of the old one serve on; the old one is retired
    (:meth:`release`) and ends with its last generation."""

    name = "zygote"

    def __init__(
        self, base_env: Mapping[str, str], cwd: str, sandbox: Sandbox | None = None
    ) -> None:
        self.base_env = dict(base_env)
        self.cwd = cwd
        self.sandbox = sandbox
        self.python = devkit_runtime()  # the runtime last launched in: prepared by default
        self._zygotes: dict[str, _Zygote] = {}  # by runtime key
        self._starting: dict[str, asyncio.Task[None]] = {}
        self._retired: list[_Zygote] = []
        self._closing: set[asyncio.Task[None]] = set()
        # Per runtime: modules of the plugin's environment its generations loaded.
        self._learned: dict[str, set[str]] = {}
        self._fallback = ColdLauncher(sandbox)

    def prepare(self, python: PythonRuntime | None = None) -> None:
        """Start the zygote of ``python`` (default: the last one launched in); once it
        runs, have it fork the next generation ahead (the supervisor calls this when a
        generation has settled, off the reload's path)."""
        python = python or self.python
        zygote = self._zygotes.get(python.key)
        if zygote is None:
            warm = self.warm_modules(python)
            zygote = _Zygote(python, warm, self.base_env, self.cwd, self.sandbox)
            self._zygotes[python.key] = zygote
            self._starting[python.key] = asyncio.create_task(zygote.start())
        else:
            zygote.fork_ahead()

    def warm(self) -> bool:
        zygote = self._zygotes.get(self.python.key)
        return zygote is not None and zygote.warm()

    def release(self, in_use: Collection[str]) -> None:
        """Retire the zygotes of runtimes no plugin runs in (``in_use``: runtime keys);
        each ends once its last generation has."""
        for key in [k for k in self._zygotes if k not in in_use and k != self.python.key]:
            zygote = self._zygotes.pop(key)
            self._starting.pop(key, None)
            zygote.retired = True
            self._retired = [z for z in self._retired if z.alive]
            if zygote.idle:
                task = asyncio.create_task(zygote.close())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
            else:
                self._retired.append(zygote)

    def learn(self, python: PythonRuntime, modules: Collection[str]) -> None:
        """A generation of ``python`` loaded ``modules`` of its environment: the zygote
        imports the new ones now, a later zygote of the same runtime at its start."""
        learned = self._learned.setdefault(python.key, set())
        new = set(modules) - learned
        learned |= new
        zygote = self._zygotes.get(python.key)
        if new and zygote is not None:
            zygote.import_modules(new)

    def warm_modules(self, python: PythonRuntime) -> set[str]:
        """The third-party modules a zygote of ``python`` imports before forking."""
        return {*python.warm, *self._learned.get(python.key, ())}

    async def launch(self, spec: LaunchSpec) -> PluginProcess:
        python = spec.python or devkit_runtime()
        self.python = python
        if python.key not in self._zygotes:
            self.prepare(python)
        zygote = self._zygotes[python.key]
        await self._starting[python.key]
        forked = await zygote.fork(spec)
        if forked is None:
            return await self._fallback.launch(spec)
        return forked

    async def close(self) -> None:
        zygotes = [*self._retired, *self._zygotes.values()]
        await asyncio.gather(*(zygote.close() for zygote in zygotes))
