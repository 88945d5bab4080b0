"""Ways to start a plugin process, fastest first, behind one process handle.

- :class:`ZygoteLauncher` (Python on Linux): fork a warm parent that has the server
  stack imported; the child gets its own stdin/stdout/stderr pipes over SCM_RIGHTS.
- :class:`SpareLauncher` (Node everywhere, Python where fork is unsafe): keep one
  pre-started shim waiting for "run this artefact"; replace it as soon as it is taken.
- :class:`ColdLauncher`: a fresh process per generation (the fallback).
- :class:`ProgramLauncher`: a backend plugin's own program (``backend.entry``), no shim.

``POWERX_PYTHON_LAUNCH`` / ``POWERX_NODE_LAUNCH`` = ``zygote`` | ``spare`` | ``cold`` force one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import sys
from collections.abc import Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from powerx.bundling.toolchain import node_executable
from powerx.host.python_runtime import PythonRuntime, devkit_runtime
from powerx.runtimes import CONTROL_PREFIX, NODE_PRELOAD_ENV, NODE_SHIM, WARM_ENV

if TYPE_CHECKING:
    from powerx.host.sandbox import Sandbox

_STREAM_LIMIT = 1 << 20


@dataclass(frozen=True)
class NodePreload:
    """A Node plugin's installed dependencies (``node_modules``, as installed from the
    declaration hashed in ``installed``) and the packages its bundle ``require()``s: a
    spare loads them before it is given the generation, which finds them in require's
    cache. Another install is another set: a spare that loaded the old one is of no use."""

    node_modules: str
    installed: str
    modules: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.node_modules, self.installed)

    def spare_env(self) -> dict[str, str]:
        loads = {"node_path": self.node_modules, "modules": list(self.modules)}
        return {NODE_PRELOAD_ENV: json.dumps(loads)}


@dataclass(frozen=True)
class LaunchSpec:
    runtime: str
    argv: list[str]  # the shim's arguments (a program's: its whole command line)
    env: dict[str, str]
    cwd: str
    # A Python plugin's interpreter and what it sees (None: the DevKit's, the toolkit).
    python: PythonRuntime | None = None
    # A Node plugin's dependencies, for its spare to load ahead.
    node: NodePreload | None = None


# The health probe, to a base URL (True: it answered 200).
Probe = Callable[[str], Coroutine[Any, Any, bool]]
# A listener a process reported ({"port": n} or {"unix": path}) -> its base URL.
Reach = Callable[[dict[str, Any]], str]


class PluginProcess(Protocol):
    pid: int
    stdout: asyncio.StreamReader
    stderr: asyncio.StreamReader
    # Where it listens already, if it did before it was given its plugin (a Node spare),
    # and the health probe sent there then: it is answered once the plugin has loaded.
    listening_url: str | None
    early_probe: asyncio.Task[bool] | None

    @property
    def returncode(self) -> int | None: ...
    async def wait(self) -> int: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...
    def close_stdin(self) -> None: ...


class Launcher(Protocol):
    name: str

    def warm(self) -> bool:
        """Whether a launch now would skip the runtime's start-up."""
        ...

    async def launch(self, spec: LaunchSpec) -> PluginProcess: ...
    async def close(self) -> None: ...


class ChildProcess:
    """A plugin process that is our own child (cold start or warm spare)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None and process.stderr is not None
        self._process = process
        self.pid = process.pid
        self.stdout: asyncio.StreamReader = process.stdout
        self.stderr: asyncio.StreamReader = process.stderr
        self.listening_url: str | None = None
        self.early_probe: asyncio.Task[bool] | None = None

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    async def wait(self) -> int:
        return await self._process.wait()

    def terminate(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._process.terminate()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._process.kill()

    def close_stdin(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()

    async def send_line(self, data: dict[str, object]) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(data).encode() + b"\n")
        await self._process.stdin.drain()


def shim_command(runtime: str, argv: list[str], python: PythonRuntime | None = None) -> list[str]:
    if runtime == "python3.11":
        return (python or devkit_runtime()).command("powerx.runtimes.python_shim", *argv)
    # A generation that debugs opens its inspector on a random loopback port. Its WebSocket
    # path is a random id; by default Node also lists it at /json/list to any local
    # process that asks. Published on stderr only (which the supervisor drops), only the
    # simulator, told on the private control pipe, knows it.
    return [
        node_executable(),
        "--enable-source-maps",
        "--inspect-publish-uid=stderr",
        str(NODE_SHIM),
        *argv,
    ]


async def _spawn(
    command: list[str], env: Mapping[str, str], cwd: str, sandbox: Sandbox | None = None
) -> ChildProcess | ForkedProcess:
    if sandbox is not None:
        return await sandbox.spawn_piped(command, env, cwd)
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
        limit=_STREAM_LIMIT,
    )
    return ChildProcess(process)


def _loopback(listening: dict[str, Any]) -> str:
    return f"http://127.0.0.1:{int(listening['port'])}"


def _succeeded(future: asyncio.Future[Any] | None) -> bool:
    """Done without an error (a warm spare started, the zygote reported ready)."""
    if future is None or not future.done() or future.cancelled():
        return False
    return future.exception() is None


class ColdLauncher:
    name = "cold"

    def __init__(self, sandbox: Sandbox | None = None) -> None:
        self.sandbox = sandbox

    def warm(self) -> bool:
        return False

    async def launch(self, spec: LaunchSpec) -> PluginProcess:
        command = shim_command(spec.runtime, spec.argv, spec.python)
        return await _spawn(command, spec.env, spec.cwd, self.sandbox)

    async def close(self) -> None:
        return None


class ProgramLauncher(ColdLauncher):
    """Runs a backend plugin's program as it is, a cold start without our shim: nothing
    of ours loads in it, so there is no runtime to keep warm."""

    name = "program"

    async def launch(self, spec: LaunchSpec) -> PluginProcess:
        return await _spawn(spec.argv, spec.env, spec.cwd, self.sandbox)


class SpareLauncher:
    """Keeps one warm shim per runtime, started before it is needed.

    The next spare is started by ``prepare()`` once the generation that took the last
    one has answered its first request and its swap is on disk, or 0.2 s after it came
    up (the supervisor calls it), not at once: a Node start-up with its warm-up costs
    ~0.1 s of CPU (measured with `/usr/bin/time node node_shim.js --spare`), and on a
    two-core laptop it would slow the very request the user saved for. A launch that
    finds no spare starts one and waits for it.
    """

    name = "spare"

    def __init__(
        self,
        runtime: str,
        base_env: Mapping[str, str],
        cwd: str,
        probe: Probe | None = None,
        reach: Reach | None = None,
        sandbox: Sandbox | None = None,
    ) -> None:
        self.runtime = runtime
        self.reach = reach or _loopback
        self.sandbox = sandbox
        self.base_env = dict(base_env)
        self.cwd = cwd
        # Sent as soon as a spare listens, so it waits in the spare, parsed, for the plugin:
        # sent after the order it would be read only once the plugin had loaded (~0.4 ms).
        self.probe = probe
        self._next: asyncio.Task[ChildProcess | ForkedProcess] | None = None
        # What the next spare runs on (a Python spare: the DevKit's until told otherwise).
        self.python = devkit_runtime() if runtime == "python3.11" else None
        # What the next Node spare loads ahead: the last generation's dependencies.
        self.node: NodePreload | None = None

    async def _warm(self) -> ChildProcess | ForkedProcess:
        command = shim_command(self.runtime, ["--spare"], self.python)
        env = {**self.base_env, **(self.python.process_env() if self.python else {})}
        if self.node is not None:
            env.update(self.node.spare_env())
        spare = await _spawn(command, env, self.cwd, self.sandbox)
        line = await spare.stdout.readline()
        if not line.startswith(CONTROL_PREFIX.encode()):
            spare.kill()
            raise RuntimeError(f"warm spare did not start: {line!r}")
        listening = json.loads(line[len(CONTROL_PREFIX) :])
        if listening.get("port") or listening.get("unix"):
            spare.listening_url = self.reach(listening)
            if self.probe is not None:
                spare.early_probe = asyncio.create_task(self.probe(spare.listening_url))
        return spare

    def prepare(self) -> None:
        if self._next is None:
            self._next = asyncio.create_task(self._warm())

    def warm(self) -> bool:
        return _succeeded(self._next)

    async def launch(self, spec: LaunchSpec) -> PluginProcess:
        if spec.python is not None and spec.python != self.python:
            await self.close()  # a spare of the previous environment is of no use
            self.python = spec.python
        if spec.runtime != "python3.11" and spec.node != self.node:
            previous, self.node = self.node, spec.node
            if (previous.key if previous else None) != (spec.node.key if spec.node else None):
                # Loaded from another install (or another plugin's): stale modules would
                # be what the generation finds in require's cache.
                await self.close()
            # Same install, other packages (an import added): this spare serves, it
            # loads them itself; the next spare loads them ahead.
        self.prepare()
        assert self._next is not None
        task, self._next = self._next, None
        try:
            spare = await task
        except Exception:
            spare = await self._warm()  # one retry with a fresh spare
        await spare.send_line({"argv": spec.argv, "env": spec.env})
        return spare

    async def close(self) -> None:
        spare: ChildProcess | ForkedProcess | None = None
        if self._next is not None:
            task, self._next = self._next, None
            if task.done() and not task.cancelled() and task.exception() is None:
                spare = task.result()
                spare.close_stdin()
                spare.kill()
            else:
                task.cancel()
                with contextlib.suppress(BaseException):
                    spare = await task
                    spare.kill()
            if spare is not None and spare.early_probe is not None:
                spare.early_probe.cancel()


class ForkedProcess:
    """A generation forked by the zygote: its pipes are ours, its exit code comes by message."""

    def __init__(
        self,
        pid: int,
        stdin_fd: int,
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader,
        exited: asyncio.Future[int],
    ) -> None:
        self.pid = pid
        self.stdout = stdout
        self.stderr = stderr
        self.listening_url: str | None = None
        self.early_probe: asyncio.Task[bool] | None = None
        self._stdin_fd: int | None = stdin_fd
        self._exited = exited

    @property
    def returncode(self) -> int | None:
        return self._exited.result() if self._exited.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def _signal(self, sig: int) -> None:
        if self.pid > 0 and not self._exited.done():  # 0: it went before it was found
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def close_stdin(self) -> None:
        if self._stdin_fd is not None:
            os.close(self._stdin_fd)
            self._stdin_fd = None

    async def send_line(self, data: dict[str, object]) -> None:
        """One JSON line on its stdin (a spare's order: small, so the pipe takes it)."""
        assert self._stdin_fd is not None
        payload = json.dumps(data).encode() + b"\n"
        while payload:
            payload = payload[os.write(self._stdin_fd, payload) :]


def _ended_stream() -> asyncio.StreamReader:
    stream = asyncio.StreamReader()
    stream.feed_eof()
    return stream


async def pipe_reader(fd: int) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_STREAM_LIMIT)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
    )
    return reader


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
        return _succeeded(self._ready)

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
        return ForkedProcess(pid, null_in, _ended_stream(), _ended_stream(), exited)

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
        if self.alive and _succeeded(self._ready):
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


def choose_launcher(
    runtime: str,
    base_env: Mapping[str, str],
    cwd: str,
    probe: Probe | None = None,
    reach: Reach | None = None,
    sandbox: Sandbox | None = None,
) -> Launcher:
    if runtime == "program":
        return ProgramLauncher(sandbox)
    variable = "POWERX_PYTHON_LAUNCH" if runtime == "python3.11" else "POWERX_NODE_LAUNCH"
    forced = os.environ.get(variable, "").strip().lower()
    fork_safe = sys.platform.startswith("linux") and hasattr(os, "fork")
    if runtime == "python3.11" and (forced == "zygote" or (not forced and fork_safe)):
        return ZygoteLauncher(base_env, cwd, sandbox)
    if forced == "cold":
        return ColdLauncher(sandbox)
    return SpareLauncher(runtime, base_env, cwd, probe, reach, sandbox)
