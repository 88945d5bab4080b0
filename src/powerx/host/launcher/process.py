"""A plugin process, however it was started: the handle the supervisor holds, what a
launch is asked for, and how a shim or program is spawned with its pipes.

- :class:`ChildProcess`: our own child (a cold start or a warm spare).
- :class:`ForkedProcess`: forked by a zygote or started in a sandbox; its pipes are ours,
  its exit code comes by message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from powerx.bundling.toolchain import node_executable
from powerx.host.python_runtime import PythonRuntime, devkit_runtime
from powerx.runtimes import NODE_PRELOAD_ENV, NODE_SHIM

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

    @property
    def code_cache(self) -> Path:
        """Where V8's compiled code of these modules is kept (runtimes/node_code_cache.js):
        inside node_modules, which the sandbox shows, so a new install starts without it."""
        what = json.dumps([self.installed, sorted(self.modules), node_executable()])
        key = hashlib.sha256(what.encode()).hexdigest()[:20]
        return Path(self.node_modules) / ".cache" / "powerx-code-cache" / key

    def spare_env(self) -> dict[str, str]:
        loads = {
            "node_path": self.node_modules,
            "modules": list(self.modules),
            "code_cache": str(self.code_cache),
        }
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
        self._group_ended = False
        self._descendants: set[int] = set()  # found when it was told to stop

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    async def wait(self) -> int:
        code = await self._process.wait()
        if not self._group_ended:
            # What it started ends with it, as in a sandbox (whose PID namespace ends with
            # its first process): its group, and what was found under it when it was told
            # to stop (Delve starts its program in a group of its own, and a program
            # stopped under ptrace loses the SIGTERM when Delve detaches). Right after the
            # reap: the numbers are still theirs.
            self._group_ended = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            for pid in self._descendants:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        return code

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, number: int) -> None:
        """To its whole process group (it leads one: ``spawn`` starts a new session), so
        what it started goes too: a Go program under Delve outlived a Delve told to stop,
        and ran on after the simulator."""
        if self._process.returncode is not None:
            return  # reaped: its number may be another process's now
        self._descendants |= descendants(self.pid)
        for pid in self._descendants:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, number)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, number)
            return
        with contextlib.suppress(ProcessLookupError):
            self._process.send_signal(number)

    def close_stdin(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()

    async def send_line(self, data: dict[str, object]) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(data).encode() + b"\n")
        await self._process.stdin.drain()


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


def ended_stream() -> asyncio.StreamReader:
    """A stream with nothing to read (a process whose output goes elsewhere)."""
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


def descendants(pid: int) -> set[int]:
    """The processes under ``pid`` now (children, theirs, ...), from /proc; empty where
    there is no /proc."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return set()
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


async def spawn(
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


def succeeded(future: asyncio.Future[Any] | None) -> bool:
    """Done without an error (a warm spare started, the zygote reported ready)."""
    if future is None or not future.done() or future.cancelled():
        return False
    return future.exception() is None
