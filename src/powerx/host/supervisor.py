"""Plugin generations: start one beside the serving one, check it, flip, drain the old one.

A generation is one process running one artefact. Traffic moves to generation N+1 only
after it reported ready and answered a health probe; the flip is one assignment on the
event loop, so every request goes either to N or to N+1. N then finishes its in-flight
requests and stops. A generation that crashes while serving is restarted with backoff;
repeated crashes are reported as a crash loop instead of being retried forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx

from powerx.debug.go_link import delve_command
from powerx.errors import PowerXError
from powerx.host.artefact_info import node_preload
from powerx.host.dev_vars import read_dev_vars, settings_digest
from powerx.host.egress_proxy import EgressProxy
from powerx.host.generations import CRASH_LOOP_AFTER, Generation, LogLine, PluginSlot
from powerx.host.launcher import (
    Launcher,
    LaunchSpec,
    PluginProcess,
    ZygoteLauncher,
    choose_launcher,
)
from powerx.host.liveness import watch_liveness
from powerx.host.programs import (
    PROBE_TIMEOUT_S,
    PROGRAM_BACKOFF_FIRST_S,
    PROGRAM_BACKOFF_MAX_S,
    PROGRAM_STOP_GRACE_S,
    backend_environment,
    backend_start_failed,
    free_port,
    inner_port,
    program_argv,
    wait_healthy,
)
from powerx.host.python_runtime import PythonRuntime
from powerx.host.sandbox import Sandbox
from powerx.host.socket_routes import SocketRoutes, base_url
from powerx.host.start_errors import start_error
from powerx.manifest import Manifest
from powerx.runtimes import (
    CONTROL_PREFIX,
    DEBUG_PROGRAM_ENV,
    LISTEN_DIR_ENV,
    NODE_EGRESS_PRELOAD,
    PYTHON_CHILD_PATH,
)
from powerx.runtimes.egress_guard import POLICY_ENV as EGRESS_POLICY_ENV
from powerx.runtimes.egress_guard import EgressPolicy

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# The only variables of the developer's environment a plugin process inherits.
_PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT")
HEALTH_PATH = "/__powerx/health"
# After a flip, the work that can wait (the rest of a reload, the next warm spare, stopping
# the previous generation) waits for the new generation's first answer, or this long when
# none comes; a reload before then starts a spare itself.
AFTER_FLIP_WAIT_S = 0.2
STOP_GRACE_S = 3.0
DRAIN_TIMEOUT_S = 10.0
CRASH_WINDOW_S = 60.0
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 5.0
# In a sandbox, Delve listens this far above the program's port (8080: 18080).
DELVE_PORT_OFFSET = 10000
# What Node's inspector writes to stderr of a generation the simulator debugs.
_INSPECTOR_CHATTER = (
    "Debugger listening on ws://",
    "For help, see: https://nodejs.org/en/docs/inspector",
    "Debugger attached.",
    "Waiting for the debugger to disconnect...",
)


class DebugHooks(Protocol):
    """What the supervisor tells the debugger (``powerx.debug.debugger.Debugger``)."""

    def wants_debug(self, plugin: str, runtime: str) -> bool: ...
    async def generation_listening(
        self, plugin: str, generation: int, run_dir: Path, endpoint: dict[str, Any]
    ) -> None: ...
    async def generation_flipped(self, plugin: str, previous: int | None, current: int) -> None: ...
    async def generation_stopped(self, plugin: str, generation: int) -> None: ...


class Supervisor:
    def __init__(
        self,
        host_url: str,
        tenant: str,
        start_timeout_s: float,
        work_dir: Path,
        on_log: Callable[[LogLine], None] | None = None,
        production_hosts: Sequence[str] = (),
        on_egress_blocked: Callable[[PluginSlot, Generation, dict[str, Any]], None] | None = None,
        debug: DebugHooks | None = None,
        on_stopped: Callable[[Generation], None] | None = None,
        run_folder: Callable[[str], Path] | None = None,
        plugin_env: Callable[[str, str], Mapping[str, str]] | None = None,
        identity: str | None = None,
    ) -> None:
        self.host_url = host_url
        self.run_identity = identity  # its .dev.vars.<identity> applies
        # More environment per plugin and generation token: the context-signing settings
        # (host/identity.py), the host's gRPC services (host/upstream).
        self.plugin_env = plugin_env
        # Set: each plugin runs in its own sandbox (host/sandbox.py), in this folder.
        self.run_folder = run_folder
        self.sandboxes: dict[str, Sandbox] = {}
        # More folders every sandbox sees, read-only: (folder, where inside).
        self.sandbox_mounts: list[tuple[Path, Path]] = []
        self.host_socket: Path | None = None  # the host API on a unix socket, for sandboxes
        self.grpc_socket: Path | None = None  # the host's gRPC services (always a socket)
        self.debug = debug
        self.on_stopped = on_stopped
        self.egress_proxy: EgressProxy | None = None  # set once the simulator started it
        self.production_hosts = tuple(production_hosts)
        self.on_egress_blocked = on_egress_blocked
        self.tenant = tenant
        self.start_timeout_s = start_timeout_s
        self.work_dir = work_dir
        self.on_log = on_log
        self.slots: dict[str, PluginSlot] = {}
        self.tokens: dict[str, tuple[str, int]] = {}  # token -> (plugin id, generation)
        self.launchers: dict[tuple[str, str], Launcher] = {}  # (runtime, plugin or "")
        # One client for health probes and for proxied requests: the probe's keep-alive
        # connection is then already open when traffic flips to a new generation.
        self.routes = SocketRoutes(httpx.Limits(max_connections=200, max_keepalive_connections=50))
        self.http = httpx.AsyncClient(
            transport=self.routes, timeout=httpx.Timeout(60.0, connect=5.0), trust_env=False
        )
        self._unix_urls: dict[str, str] = {}  # socket path -> its base URL
        self._background: set[asyncio.Task[None]] = set()
        self.live: set[Generation] = set()  # every generation whose process may still run
        self.closing = False

    # -- processes ---------------------------------------------------------------------

    def _base_env(self, plugin: str = "") -> dict[str, str]:
        env = {name: os.environ[name] for name in _PASSED_ENV if name in os.environ}
        env.update({"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"})
        sandbox = self.sandbox(plugin) if plugin else None
        if sandbox is not None:  # the developer's home is not in the sandbox
            env.update({"HOME": "/tmp", "TMPDIR": "/tmp", LISTEN_DIR_ENV: str(sandbox.sockets)})
            if self.host_socket is not None:
                env["POWERX_HOST_SOCKET"] = str(self.host_socket)
        return env

    @property
    def contained(self) -> bool:
        return self.run_folder is not None

    def sandbox(self, plugin: str) -> Sandbox | None:
        """The plugin's sandbox (made on first use; it starts with its first process)."""
        if self.run_folder is None:
            return None
        if plugin not in self.sandboxes:
            self.sandboxes[plugin] = Sandbox(
                plugin,
                self.run_folder(plugin),
                self._base_env(),
                self._simulator_ports(),
                self.host_socket,
                self.grpc_socket,
                [*self.sandbox_mounts, *self._plugin_mounts(plugin)],
            )
        return self.sandboxes[plugin]

    def _plugin_mounts(self, plugin: str) -> list[tuple[Path, Path]]:
        """A Node plugin's node_modules, read-only where it is: its bundle require()s its
        dependencies from there. (npm ci empties the folder, it does not replace it, so
        the view stays that of the folder through reinstalls.)"""
        slot = self.slots.get(plugin)
        if slot is None or slot.manifest.is_backend or slot.manifest.runtime == "python3.11":
            return []
        node_modules = (slot.source_dir / "node_modules").resolve()
        return [(node_modules, node_modules)] if node_modules.is_dir() else []

    def open_host_socket(self) -> socket.socket:
        """A unix socket for the simulator's HTTP server, bound into every sandbox: the
        host API without a relay between namespaces (the loopback port, forwarded into
        the sandbox, stays for clients that cannot use it)."""
        folder = Path(tempfile.mkdtemp(prefix="pxh-"))
        self.host_socket = folder / "host.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.host_socket))
        listener.listen(512)
        return listener

    def _simulator_ports(self) -> set[int]:
        """What a plugin reaches of the simulator: its host API and egress proxy."""
        ports = {httpx.URL(self.host_url).port or 80}
        if self.egress_proxy is not None and self.egress_proxy.port is not None:
            ports.add(self.egress_proxy.port)
        return ports

    def launcher(self, runtime: str, plugin: str) -> Launcher:
        sandbox = self.sandbox(plugin)
        key = (runtime, plugin if sandbox is not None else "")
        if key not in self.launchers:
            cwd = sandbox.run_folder if sandbox is not None else self.work_dir
            self.launchers[key] = choose_launcher(
                runtime,
                self._base_env(plugin),
                str(cwd),
                self._healthy_once_loaded,
                self.reach,
                sandbox,
            )
        return self.launchers[key]

    def reach(self, listening: dict[str, Any]) -> str:
        """The base URL of a listener a plugin process reported (``port`` or ``unix``)."""
        path = listening.get("unix")
        if not path:
            return base_url(int(listening["port"]))
        if path not in self._unix_urls:
            self._unix_urls[path] = self.routes.add(str(path))
        return self._unix_urls[path]

    async def _forget(self, gen: Generation) -> None:
        for path, url in list(self._unix_urls.items()):
            if url == gen.url:
                del self._unix_urls[path]
                await self.routes.remove(url)

    async def _reachable(self, gen: Generation, port: int) -> int:
        """The loopback port the simulator reaches ``port`` of ``gen`` on (its debugger):
        the same one, or, in a sandbox, one brought out of it."""
        sandbox = self.sandbox(gen.plugin_id)
        if sandbox is None:
            return port
        outer = await sandbox.expose(port)
        gen.exposed.append(outer)
        return outer

    def settings_changed(self, slot: PluginSlot) -> bool:
        """The plugin's .dev.vars differ from what its serving generation started with."""
        serving = slot.active.settings if slot.active is not None else ""
        return settings_digest(read_dev_vars(slot.source_dir, self.run_identity)) != serving

    def private_ports(self, plugin_id: str, port: int | None) -> set[int]:
        """The ports a generation reached at ``port`` may call its own: that one and, in a
        sandbox, the one it listens on inside (a redirect it builds names that one)."""
        if port is None:
            return set()
        sandbox = self.sandboxes.get(plugin_id)
        inner = sandbox.inner_port(port) if sandbox is not None else None
        return {port} if inner is None else {port, inner}

    def _environment(
        self, manifest: Manifest, token: str, python: PythonRuntime | None = None
    ) -> dict[str, str]:
        env = self._base_env(manifest.id)
        if python is not None:  # a backend program needs only its PATH
            path = env.get("PATH", "")
            env.update(python.path_env(path) if manifest.is_backend else python.plugin_env(path))
        env.update(
            {
                "POWERX_HOST_URL": self.host_url,
                "POWERX_PLUGIN_TOKEN": token,
                "POWERX_PLUGIN_ID": manifest.id,
                "POWERX_PLUGIN_VERSION": manifest.version,
                "POWERX_TENANT": self.tenant,
                EGRESS_POLICY_ENV: json.dumps(
                    {
                        "allow": list(manifest.egress),
                        "deny": list(self.production_hosts),
                        "simulator": httpx.URL(self.host_url).netloc.decode(),
                        "proxy": f"127.0.0.1:{self.egress_proxy.port}" if self.egress_proxy else "",
                    }
                ),
            }
        )
        if self.plugin_env is not None:
            env.update(self.plugin_env(manifest.id, token))
        if self.egress_proxy is not None:
            # Tools the plugin starts (curl, pip ...) go through the proxy, which applies the
            # same policy; the simulator itself is reached directly.
            proxy_url = self.egress_proxy.url_for(manifest.id, token)
            for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
                env[name] = proxy_url
            env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
        if not manifest.runtime.startswith("python"):  # a backend program may be either
            # Node ignores HTTP(S)_PROXY, so a `node` the plugin starts loads the guard too.
            env["NODE_OPTIONS"] = f"--require {json.dumps(str(NODE_EGRESS_PRELOAD))}"
        if not manifest.runtime.startswith("node"):
            # And a `python` it starts runs python_child/sitecustomize.py, which does the same.
            env["PYTHONPATH"] = str(PYTHON_CHILD_PATH)
        if self.debug is not None and self.debug.wants_debug(manifest.id, manifest.debug_runtime):
            # A program's Python loads the debugger in sitecustomize, under its own name so
            # that the shim (whose start-up runs sitecustomize too) does not load it twice.
            env[DEBUG_PROGRAM_ENV if manifest.is_backend else "POWERX_DEBUGGER"] = "1"
        return env

    @staticmethod
    def _shim_argv(manifest: Manifest, run_dir: Path, source_dir: Path) -> list[str]:
        info = json.loads((run_dir / "artefact.json").read_text(encoding="utf-8"))
        runnable = str(info["runnable"])
        if manifest.runtime == "python3.11":
            entry_file = str(Path(runnable).relative_to("src"))
            return [str(run_dir / "src"), entry_file, str(info["entry_attribute"])]
        return [str(run_dir), runnable, str(source_dir)]

    def _log(
        self,
        slot: PluginSlot,
        generation: int,
        stream: Literal["stdout", "stderr", "system"],
        line: str,
    ) -> None:
        record = LogLine(time.time(), slot.manifest.id, generation, stream, line)
        slot.logs.append(record)
        if self.on_log is not None:
            self.on_log(record)

    async def _read_stdout(self, slot: PluginSlot, gen: Generation) -> None:
        async for raw in gen.process.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            if line.startswith(CONTROL_PREFIX):
                with contextlib.suppress(ValueError):
                    message = json.loads(line[len(CONTROL_PREFIX) :])
                    if message.get("event") == "egress_blocked":
                        if self.on_egress_blocked is not None:
                            self.on_egress_blocked(slot, gen, message)
                    elif message.get("event") == "debug":
                        self._spawn_background(self._attach_debugger(slot, gen, message))
                    elif message.get("event") == "modules":
                        self._spawn_background(self._learn_modules(gen, message))
                    elif not gen.ready.done():
                        gen.ready.set_result(message)
                    continue
            self._log(slot, gen.number, "stdout", line)

    async def _attach_debugger(
        self, slot: PluginSlot, gen: Generation, message: dict[str, Any]
    ) -> None:
        """The generation waits for its breakpoints before loading code; replay them. If
        that fails it would wait forever, so it is stopped and the start reports why."""
        if self.debug is None:
            return
        try:
            message = await self._debug_endpoint_reachable(gen, message)
            await self.debug.generation_listening(
                slot.manifest.id, gen.number, gen.run_dir, message
            )
        except Exception as error:
            self._log(slot, gen.number, "system", f"debugger attach failed: {error!r}")
            gen.process.kill()

    async def _debug_endpoint_reachable(
        self, gen: Generation, message: dict[str, Any]
    ) -> dict[str, Any]:
        """debugpy's port or the inspector's WebSocket URL, as the simulator reaches it."""
        if self.sandbox(gen.plugin_id) is None:
            return message
        message = dict(message, pid=gen.pid)  # it knows only its pid inside the sandbox
        sandbox = self.sandbox(gen.plugin_id)
        if message.get("delve") and sandbox is not None:  # no secret: never on loopback
            message["unix"] = await sandbox.inner_socket(int(message["port"]))
            gen.relayed.append(int(message["port"]))
            return message
        if "port" in message:
            message["port"] = await self._reachable(gen, int(message["port"]))
        if "url" in message:
            url = httpx.URL(str(message["url"]))
            if url.port is not None:
                outer = await self._reachable(gen, url.port)
                message["url"] = str(url.copy_with(port=outer))
        return message

    async def _read_stderr(self, slot: PluginSlot, gen: Generation) -> None:
        async for raw in gen.process.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            if not line.startswith(_INSPECTOR_CHATTER):
                self._log(slot, gen.number, "stderr", line)

    async def _watch_exit(self, slot: PluginSlot, gen: Generation) -> None:
        code = await gen.process.wait()
        gen.exit_code = code
        if not gen.ready.done():
            gen.ready.set_result({"event": "exited", "code": code})
        if gen.state == "running":
            gen.state = "crashed"
            self.tokens.pop(gen.token, None)
            self._log(
                slot,
                gen.number,
                "system",
                f"generation {gen.number} exited unexpectedly with code {code}",
            )
            if slot.active is gen and not self.closing:
                self._spawn_background(self._restart_after_crash(slot, gen))
        elif gen.state == "draining":
            gen.state = "stopped"

    def _spawn_background(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- generations -------------------------------------------------------------------

    async def start_generation(
        self,
        slot: PluginSlot,
        digest: str,
        run_dir: Path,
        python: PythonRuntime | None = None,
    ) -> Generation:
        """Start a generation and wait until it is ready and healthy; traffic is not moved.
        ``python``: a Python plugin's interpreter and environment (None: the DevKit's)."""
        manifest = slot.manifest
        token = f"pxp_{secrets.token_urlsafe(24)}"
        started = time.perf_counter()
        settings = read_dev_vars(slot.source_dir, self.run_identity)
        # The simulator's own names win: its contract with the plugin is not the file's.
        env = {**settings.values, **self._environment(manifest, token, python)}
        sandbox = self.sandbox(manifest.id)
        program_port = self._program_port(manifest) if manifest.is_backend else None
        if program_port is None:
            node = (
                None if manifest.runtime == "python3.11" else node_preload(run_dir, slot.source_dir)
            )
            if node is not None:  # its bundle require()s packages from there
                env["NODE_PATH"] = node.node_modules
            spec = LaunchSpec(
                manifest.runtime,
                self._shim_argv(manifest, run_dir, slot.source_dir),
                env,
                str(run_dir),
                python,
                node,
            )
        else:
            env.update(backend_environment(program_port))
            cwd = run_dir / "src"
            interpreter = python.python if python is not None else None
            argv = program_argv(manifest, cwd, env, interpreter)
            delve_port = self._delve_port(manifest, run_dir, program_port)
            if delve_port is not None:  # halted under Delve until its breakpoints are in
                argv = delve_command(argv, delve_port)
            spec = LaunchSpec(manifest.runtime, argv, env, str(cwd))
        if sandbox is not None:  # the host API, the egress proxy, local services it names
            for port in {*self._simulator_ports(), *loopback_ports(manifest.egress)}:
                await sandbox.forward(port)
        process = await self._launch(manifest, spec)
        slot.last_number += 1
        gen = Generation(manifest.id, slot.last_number, digest, token, process, run_dir)
        gen.python = python
        gen.settings = settings_digest(settings)
        if settings.ignored:
            names = ", ".join(settings.ignored)
            self._log(slot, gen.number, "system", f".dev.vars: {names} ignored (set by powerx)")
        gen.idle.set()
        self.live.add(gen)
        self.tokens[token] = (manifest.id, gen.number)
        gen.tasks = [
            asyncio.create_task(self._read_stdout(slot, gen)),
            asyncio.create_task(self._read_stderr(slot, gen)),
            asyncio.create_task(self._watch_exit(slot, gen)),
        ]
        if program_port is not None and delve_port is not None:
            endpoint = {"event": "debug", "port": delve_port, "delve": True}
            self._spawn_background(self._attach_debugger(slot, gen, endpoint))
        early_probe = process.early_probe  # a spare's, sent before its order
        health: Callable[[], Awaitable[bool]] | None = None
        if program_port is not None:  # a program's readiness: its health path answers 200
            health = await self._program_health(gen, manifest, program_port)
            ready = {"event": "ready", "port": gen.port}
            early_probe = asyncio.create_task(wait_healthy(health, gen.ready, ready))
        try:
            message = await asyncio.wait_for(asyncio.shield(gen.ready), self.start_timeout_s)
        except TimeoutError:
            message = {"event": "timeout"}
        try:
            if message.get("event") == "ready":
                gen.url = self.reach(message)
                gen.port = message.get("port") if isinstance(message.get("port"), int) else None
                if await self._passes_probe(gen.url, early_probe):
                    gen.state = "running"
                    gen.start_ms = (time.perf_counter() - started) * 1000
                    if health is not None:
                        hung = functools.partial(self._hung, slot, gen)
                        gen.tasks.append(asyncio.create_task(watch_liveness(health, hung)))
                    self._spawn_background(
                        self._warm_next_after_first_request(gen, manifest.runtime)
                    )
                    return gen
                message = {"event": "unhealthy"}
        finally:
            if early_probe is not None:
                early_probe.cancel()
        self.prepare_launchers({(manifest.runtime, manifest.id)})  # the next reload: warm
        gen.state = "failed"
        await self.stop_generation(gen)
        raise start_error(slot, gen, message, self.start_timeout_s)

    def _delve_port(self, manifest: Manifest, run_dir: Path, program_port: int) -> int | None:
        """Where Delve listens for a Go generation the debugger wants (None: no Delve):
        in a sandbox, beside the program's own port (each live generation has its own);
        outside, a free loopback port."""
        if self.debug is None or not self.debug.wants_debug(manifest.id, manifest.runtime):
            return None
        info = json.loads((run_dir / "artefact.json").read_text(encoding="utf-8"))
        if info.get("debugger") != "dlv":
            return None
        return program_port + DELVE_PORT_OFFSET if self.sandbox(manifest.id) else free_port()

    def _program_port(self, manifest: Manifest) -> int:
        """Where a backend program of ``manifest`` listens: in its sandbox, the port it
        prefers unless a live generation holds it; outside, a free loopback port."""
        sandbox = self.sandbox(manifest.id)
        if sandbox is None:
            return free_port()
        taken = {
            sandbox.inner_port(g.port)
            for g in self.live
            if g.plugin_id == manifest.id and g.port is not None
        }
        assert manifest.backend is not None
        return inner_port(manifest.backend.port, {p for p in taken if p is not None})

    async def _launch(self, manifest: Manifest, spec: LaunchSpec) -> PluginProcess:
        try:
            return await self.launcher(manifest.runtime, manifest.id).launch(spec)
        except (OSError, PowerXError) as error:  # a program that is not there, or not runnable
            if not manifest.is_backend:
                raise
            message = error.message if isinstance(error, PowerXError) else str(error)
            raise backend_start_failed(manifest, spec.argv, message) from None

    async def _program_health(
        self, gen: Generation, manifest: Manifest, port: int
    ) -> Callable[[], Awaitable[bool]]:
        """The probe of the program's health path, where the simulator reaches ``port``
        (which becomes ``gen.port``): its readiness, then its liveness."""
        assert manifest.backend is not None
        gen.port = await self._reachable(gen, port)
        health = f"{self.reach({'port': gen.port})}{manifest.backend.health}"

        async def probe() -> bool:
            try:
                response = await self.http.get(health, timeout=PROBE_TIMEOUT_S)
            except httpx.HTTPError:
                return False
            return response.status_code == 200

        return probe

    def _hung(self, slot: PluginSlot, gen: Generation, missed: int) -> None:
        """A running program stopped answering its health path: end it; its exit is then
        a crash, restarted with backoff."""
        health = slot.manifest.backend.health if slot.manifest.backend else ""
        self._log(
            slot,
            gen.number,
            "system",
            f"generation {gen.number} failed its health probe ({health}) {missed} times in a "
            "row; restarting it",
        )
        gen.process.kill()

    @staticmethod
    async def first_request(gen: Generation) -> None:
        """Until ``gen`` has answered its first request, or AFTER_FLIP_WAIT_S: work done
        sooner competes for the CPU with the very request the developer saved for."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gen.served.wait(), AFTER_FLIP_WAIT_S)

    @staticmethod
    async def _settled(gen: Generation) -> None:
        """Until ``gen`` has answered its first request and its swap is on disk, or
        AFTER_FLIP_WAIT_S: work done sooner competes for the CPU with the request the
        developer saved for, then with the rest of the reload."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(AFTER_FLIP_WAIT_S):
                await gen.served.wait()
                await gen.swapped.wait()

    async def _learn_modules(self, gen: Generation, message: dict[str, Any]) -> None:
        """Modules of its environment a generation loaded: its zygote imports them too,
        once that generation's first request and swap are done."""
        names = message.get("names")
        if gen.python is None or not isinstance(names, list):
            return
        await self._settled(gen)
        learn = getattr(self.launcher("python3.11", gen.plugin_id), "learn", None)
        if learn is not None and not self.closing:
            learn(gen.python, [str(name) for name in names])

    async def _warm_next_after_first_request(self, gen: Generation, runtime: str) -> None:
        """Start the next warm spare (a Node start-up costs ~0.1 s of CPU) after
        ``gen``'s first request and swap."""
        await self._settled(gen)
        if self.closing:
            return
        launcher = self.launcher(runtime, gen.plugin_id)
        if isinstance(launcher, ZygoteLauncher) and gen.python is not None:
            launcher.prepare(gen.python)  # that plugin's zygote, where launchers are shared
        else:
            self.prepare_launchers({(runtime, gen.plugin_id)})

    async def _passes_probe(self, url: str, early: asyncio.Task[bool] | None) -> bool:
        """The health probe. One sent early (to a spare, on the port it serves from,
        before its order) counts if it passed; else the generation is asked again."""
        if early is not None and await early:
            return True
        return await self._healthy(url)

    async def _healthy(self, url: str, timeout_s: float | None = 5.0) -> bool:
        try:
            response = await self.http.get(f"{url}{HEALTH_PATH}", timeout=timeout_s)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def _healthy_once_loaded(self, url: str) -> bool:
        """The probe a warm spare holds until it is given a plugin (maybe minutes later);
        a spare that never loads one is stopped, which ends it."""
        return await self._healthy(url, timeout_s=None)

    async def stop_generation(self, gen: Generation, drain: bool = False) -> None:
        """Stop a generation; with ``drain`` its in-flight requests finish first."""
        if gen.state == "running":
            gen.state = "draining"
        if drain and gen.inflight:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gen.idle.wait(), DRAIN_TIMEOUT_S)
        self.tokens.pop(gen.token, None)
        if gen.process.returncode is None:
            slot = self.slots.get(gen.plugin_id)
            program = slot is not None and slot.manifest.is_backend
            grace = PROGRAM_STOP_GRACE_S if program else STOP_GRACE_S
            gen.process.close_stdin()
            gen.process.terminate()
            try:
                await asyncio.wait_for(gen.process.wait(), grace)
            except TimeoutError:
                gen.process.kill()
                await gen.process.wait()
                if slot is not None:
                    message = f"did not stop within {grace:g} s of SIGTERM: killed (SIGKILL)"
                    self._log(slot, gen.number, "system", message)
        if gen.state in {"draining", "starting"}:
            gen.state = "stopped"
        for task in gen.tasks:
            if not task.done() and task is not asyncio.current_task():
                task.cancel()
        await asyncio.gather(
            *(t for t in gen.tasks if t is not asyncio.current_task()), return_exceptions=True
        )
        self.live.discard(gen)
        await self._forget(gen)
        sandbox = self.sandbox(gen.plugin_id)
        if sandbox is not None:
            for port in gen.exposed:
                sandbox.release(port)
            for inner in gen.relayed:
                sandbox.release_socket(inner)
        if gen.python is not None:
            self._release_runtimes()
        if self.on_stopped is not None:
            self.on_stopped(gen)
        if self.debug is not None:
            await self.debug.generation_stopped(gen.plugin_id, gen.number)

    def _release_runtimes(self) -> None:
        """Zygotes of Python runtimes (environments) no generation runs in any more, nor
        the one a plugin serves from, are retired."""
        in_use = {g.python.key for g in self.live if g.python is not None}
        in_use |= {s.active.python.key for s in self.slots.values() if s.active and s.active.python}
        for launcher in self.launchers.values():
            if isinstance(launcher, ZygoteLauncher):
                launcher.release(in_use)

    def flip(self, slot: PluginSlot, gen: Generation) -> Generation | None:
        """Route new requests to ``gen``; the previous generation drains in the background."""
        previous, slot.active = slot.active, gen
        slot.crash_loop = False
        if self.debug is not None:
            number = previous.number if previous is not None else None
            self._spawn_background(self.debug.generation_flipped(gen.plugin_id, number, gen.number))
        if previous is not None and previous is not gen:
            self._spawn_background(self._retire_after_first_request(previous, gen))
        return previous

    async def _retire_after_first_request(self, previous: Generation, gen: Generation) -> None:
        """Stop the previous generation (it gets no new requests) after ``gen``'s first
        request and swap; it drains what it still serves."""
        await self._settled(gen)
        await self.stop_generation(previous, drain=True)

    def slot_for(self, manifest: Manifest, source_dir: Path) -> PluginSlot:
        slot = self.slots.get(manifest.id)
        if slot is None:
            slot = self.slots[manifest.id] = PluginSlot(manifest, source_dir)
        return slot

    async def _restart_after_crash(self, slot: PluginSlot, crashed: Generation) -> None:
        now = time.monotonic()
        slot.crashes.append(now)
        recent = [t for t in slot.crashes if now - t <= CRASH_WINDOW_S]
        if len(recent) >= CRASH_LOOP_AFTER:
            slot.crash_loop = True
            self._log(
                slot,
                crashed.number,
                "system",
                f"crash loop: {len(recent)} crashes in {CRASH_WINDOW_S:g} s; not restarting. "
                "Fix the plugin and save (or reload) to start it again.",
            )
            return
        first, most = (BACKOFF_FIRST_S, BACKOFF_MAX_S)
        if slot.manifest.is_backend:
            first, most = (PROGRAM_BACKOFF_FIRST_S, PROGRAM_BACKOFF_MAX_S)
        delay = min(most, first * 2 ** (len(recent) - 1))
        self._log(slot, crashed.number, "system", f"restarting in {delay:.1f} s")
        await asyncio.sleep(delay)
        async with slot.lock:
            if slot.active is not crashed or self.closing:
                return  # a reload replaced it meanwhile
            try:
                gen = await self.start_generation(
                    slot, crashed.digest, crashed.run_dir, crashed.python
                )
            except PowerXError as error:
                self._log(slot, crashed.number, "system", f"restart failed: {error.message}")
                self._spawn_background(self._restart_after_crash(slot, crashed))
                return
            slot.restarts += 1
            slot.active = gen
            gen.swapped.set()  # the pointer already names its artefact
            if self.debug is not None:
                await self.debug.generation_flipped(slot.manifest.id, crashed.number, gen.number)
            self._log(
                slot, gen.number, "system", f"restarted as generation {gen.number} after a crash"
            )

    def prepare_launchers(self, plugins: set[tuple[str, str]]) -> None:
        """Start warm parents/spares early so the first reload already finds them;
        ``plugins``: (runtime, plugin id) pairs."""
        for runtime, plugin in plugins:
            launcher = self.launcher(runtime, plugin)
            prepare = getattr(launcher, "prepare", None)
            if prepare is not None:
                prepare()

    async def stop_all(self) -> None:
        self.closing = True
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await asyncio.gather(*(self.stop_generation(gen) for gen in list(self.live)))
        await asyncio.gather(*(launcher.close() for launcher in self.launchers.values()))
        await asyncio.gather(*(sandbox.close() for sandbox in self.sandboxes.values()))
        if self.host_socket is not None:
            shutil.rmtree(self.host_socket.parent, ignore_errors=True)
        await self.http.aclose()

    def egress_policy(self, token: str) -> tuple[str, EgressPolicy] | None:
        """The egress policy of the live generation a proxy token belongs to."""
        slot = self.identity(token)
        if slot is None:
            return None
        simulator = httpx.URL(self.host_url).netloc.decode()
        policy = EgressPolicy(slot.manifest.egress, self.production_hosts, simulator)
        return slot.manifest.id, policy

    def identity(self, token: str) -> PluginSlot | None:
        """The plugin a per-process token belongs to (only while that generation lives)."""
        entry = self.tokens.get(token)
        return self.slots.get(entry[0]) if entry else None


def loopback_ports(egress: Sequence[str]) -> set[int]:
    """Ports of this machine the manifest's ``egress`` names (``localhost:8080``)."""
    ports: set[int] = set()
    for entry in egress:
        host, _, port = entry.rpartition(":")
        if host.strip("[]").lower() in LOOPBACK_HOSTS and port.isdigit():
            ports.add(int(port))
    return ports
