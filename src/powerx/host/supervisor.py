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
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx

from powerx.config import Tuning
from powerx.debug.go_link import delve_command
from powerx.errors import PowerXError
from powerx.host.artefact_info import link_node_modules, node_preload
from powerx.host.dev_vars import read_dev_vars, settings_digest
from powerx.host.generation_env import generation_environment, shim_argv
from powerx.host.generations import CRASH_LOOP_AFTER, Generation, LogLine, PluginSlot
from powerx.host.launcher import (
    Launcher,
    LaunchSpec,
    PluginProcess,
)
from powerx.host.launcher_pool import LauncherPool
from powerx.host.liveness import watch_liveness
from powerx.host.plugin_network import PluginNetwork, loopback_ports
from powerx.host.programs import (
    backend_environment,
    backend_start_failed,
    delve_port,
    listen_port,
    program_argv,
    wait_healthy,
)
from powerx.host.python_runtime import PythonRuntime
from powerx.host.start_errors import start_error
from powerx.manifest import Manifest
from powerx.observe import events
from powerx.observe.events import EventBus
from powerx.runtimes import (
    CONTROL_PREFIX,
)
from powerx.runtimes.egress_guard import EgressPolicy

# What Node's inspector writes to stderr of a generation the simulator debugs.
_INSPECTOR_CHATTER = (
    "Debugger listening on ws://",
    "For help, see: https://nodejs.org/en/docs/inspector",
    "Debugger attached.",
    "Waiting for the debugger to disconnect...",
)


class DebugHooks(Protocol):
    """What the supervisor asks of the debugger (``powerx.debug.debugger.Debugger``) while
    a generation starts; flips and stops reach it as events on the bus."""

    def wants_debug(self, plugin: str, runtime: str) -> bool: ...
    async def generation_listening(
        self, plugin: str, generation: int, run_dir: Path, endpoint: dict[str, Any]
    ) -> None: ...


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
        bus: EventBus | None = None,
        tuning: Tuning | None = None,
        slots: dict[str, PluginSlot] | None = None,
        run_folder: Callable[[str], Path] | None = None,
        plugin_env: Callable[[str, str], Mapping[str, str]] | None = None,
        identity: str | None = None,
    ) -> None:
        self.host_url = host_url
        self.run_identity = identity  # its .dev.vars.<identity> applies
        # More environment per plugin and generation token: the context-signing settings
        # (host/identity.py), the host's gRPC services (host/upstream).
        self.plugin_env = plugin_env
        self.network = PluginNetwork(host_url, run_folder)
        self.network.own_mounts = self._plugin_mounts
        self.http = self.network.http
        self.debug = debug
        # The generations' lifecycle (started, flipped, stopped) is published here.
        self.bus = bus or EventBus()
        self.tuning = tuning or Tuning()
        self.production_hosts = tuple(production_hosts)
        self.on_egress_blocked = on_egress_blocked
        self.tenant = tenant
        self.start_timeout_s = start_timeout_s
        self.work_dir = work_dir
        self.on_log = on_log
        self.slots: dict[str, PluginSlot] = {} if slots is None else slots
        self.tokens: dict[str, tuple[str, int]] = {}  # token -> (plugin id, generation)
        self.launchers = LauncherPool(self.network, work_dir)
        self._background: set[asyncio.Task[None]] = set()
        self.live: set[Generation] = set()  # every generation whose process may still run
        self.closing = False

    @property
    def contained(self) -> bool:
        return self.network.contained

    def _plugin_mounts(self, plugin: str) -> list[tuple[Path, Path]]:
        """A Node plugin's node_modules, read-only where it is: its bundle (or program)
        require()s its dependencies from there. (npm ci empties the folder, it does not
        replace it, so the view stays that of the folder through reinstalls.)"""
        slot = self.slots.get(plugin)
        if slot is None or (not slot.manifest.is_backend and slot.manifest.runtime == "python3.11"):
            return []
        node_modules = (slot.source_dir / "node_modules").resolve()
        return [(node_modules, node_modules)] if node_modules.is_dir() else []

    def open_host_socket(self) -> socket.socket:
        return self.network.open_host_socket()

    def private_ports(self, plugin_id: str, port: int | None) -> set[int]:
        return self.network.private_ports(plugin_id, port)

    async def open_egress_proxy(self, on_blocked: Callable[[str, str, int, str], None]) -> None:
        """The egress proxy (host/plugin_network.py), applying each generation's policy."""
        await self.network.open_egress_proxy(self.egress_policy, on_blocked)

    def launcher(self, runtime: str, plugin: str) -> Launcher:
        return self.launchers.launcher(runtime, plugin)

    def settings_changed(self, slot: PluginSlot) -> bool:
        """The plugin's .dev.vars differ from what its serving generation started with."""
        serving = slot.active.settings if slot.active is not None else ""
        return settings_digest(read_dev_vars(slot.source_dir, self.run_identity)) != serving

    def _environment(
        self, manifest: Manifest, token: str, python: PythonRuntime | None = None
    ) -> dict[str, str]:
        extra = self.plugin_env(manifest.id, token) if self.plugin_env is not None else {}
        debugged = self.debug is not None and self.debug.wants_debug(
            manifest.id, manifest.debug_runtime
        )
        return generation_environment(
            self.network.process_env(manifest.id),
            manifest,
            token,
            python,
            host_url=self.host_url,
            tenant=self.tenant,
            production_hosts=self.production_hosts,
            egress_proxy=self.network.egress_proxy,
            extra=extra,
            debugged=debugged,
        )

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
            message = await self.network.debug_endpoint(gen, message)
            await self.debug.generation_listening(
                slot.manifest.id, gen.number, gen.run_dir, message
            )
        except Exception as error:
            self._log(slot, gen.number, "system", f"debugger attach failed: {error!r}")
            gen.process.kill()

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
        sandbox = self.network.sandbox(manifest.id)
        program_port = listen_port(manifest, sandbox, self.live) if manifest.is_backend else None
        if program_port is None:
            node = (
                None if manifest.runtime == "python3.11" else node_preload(run_dir, slot.source_dir)
            )
            if node is not None:  # its bundle require()s packages from there
                env["NODE_PATH"] = node.node_modules
            spec = LaunchSpec(
                manifest.runtime,
                shim_argv(manifest, run_dir, slot.source_dir),
                env,
                str(run_dir),
                python,
                node,
            )
        else:
            env.update(backend_environment(program_port))
            cwd = run_dir / "src"
            link_node_modules(run_dir, slot.source_dir)
            interpreter = python.python if python is not None else None
            argv = program_argv(manifest, cwd, env, interpreter)
            delve_port = self._delve_port(manifest, run_dir, program_port)
            if delve_port is not None:  # halted under Delve until its breakpoints are in
                argv = delve_command(argv, delve_port)
            spec = LaunchSpec(manifest.runtime, argv, env, str(cwd))
        if sandbox is not None:  # the host API, the egress proxy, local services it names
            for port in {*self.network.simulator_ports(), *loopback_ports(manifest.egress)}:
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
                gen.url = self.network.reach(message)
                gen.port = message.get("port") if isinstance(message.get("port"), int) else None
                if await self._passes_probe(gen.url, early_probe):
                    gen.state = "running"
                    gen.start_ms = (time.perf_counter() - started) * 1000
                    if health is not None:
                        hung = functools.partial(self._hung, slot, gen)
                        liveness = watch_liveness(
                            health,
                            hung,
                            self.tuning.liveness_interval_s,
                            self.tuning.liveness_failures,
                        )
                        gen.tasks.append(asyncio.create_task(liveness))
                    self._spawn_background(
                        self._warm_next_after_first_request(gen, manifest.runtime)
                    )
                    self.bus.publish(
                        events.GENERATION_STARTED,
                        {
                            "plugin": manifest.id,
                            "generation": gen.number,
                            "digest": digest,
                            "start_ms": round(gen.start_ms, 2),
                        },
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
        if self.debug is None or not self.debug.wants_debug(manifest.id, manifest.runtime):
            return None
        return delve_port(run_dir, program_port, self.network.sandbox(manifest.id) is not None)

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
        gen.port = await self.network.reachable(gen, port)
        health = f"{self.network.reach({'port': gen.port})}{manifest.backend.health}"

        async def probe() -> bool:
            try:
                response = await self.http.get(health, timeout=self.tuning.probe_timeout_s)
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

    async def first_request(self, gen: Generation) -> None:
        """Until ``gen`` has answered its first request, or ``after_flip_wait_s``: work
        done sooner competes for the CPU with the very request the developer saved for."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gen.served.wait(), self.tuning.after_flip_wait_s)

    async def _settled(self, gen: Generation) -> None:
        """Until ``gen`` has answered its first request and its swap is on disk, or
        ``after_flip_wait_s``: work done sooner competes for the CPU with the request the
        developer saved for, then with the rest of the reload."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.tuning.after_flip_wait_s):
                await gen.served.wait()
                await gen.swapped.wait()

    async def _learn_modules(self, gen: Generation, message: dict[str, Any]) -> None:
        """Modules of its environment a generation loaded: its zygote imports them too,
        once that generation's first request and swap are done."""
        names = message.get("names")
        if gen.python is None or not isinstance(names, list):
            return
        await self._settled(gen)
        if not self.closing:
            self.launchers.learn(gen, [str(name) for name in names])

    async def _warm_next_after_first_request(self, gen: Generation, runtime: str) -> None:
        """Start the next warm spare (a Node start-up costs ~0.1 s of CPU) after
        ``gen``'s first request and swap."""
        await self._settled(gen)
        if not self.closing:
            self.launchers.warm_next(gen, runtime)

    async def _passes_probe(self, url: str, early: asyncio.Task[bool] | None) -> bool:
        """The health probe. One sent early (to a spare, on the port it serves from,
        before its order) counts if it passed; else the generation is asked again."""
        if early is not None and await early:
            return True
        return await self.network.healthy(url)

    async def stop_generation(self, gen: Generation, drain: bool = False) -> None:
        """Stop a generation; with ``drain`` its in-flight requests finish first."""
        if gen.state == "running":
            gen.state = "draining"
        if drain and gen.inflight:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gen.idle.wait(), self.tuning.drain_timeout_s)
        self.tokens.pop(gen.token, None)
        if gen.process.returncode is None:
            slot = self.slots.get(gen.plugin_id)
            program = slot is not None and slot.manifest.is_backend
            grace = self.tuning.program_stop_grace_s if program else self.tuning.stop_grace_s
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
        await self.network.forget(gen)
        if gen.python is not None:
            self._release_runtimes()
        self.bus.publish(
            events.GENERATION_STOPPED,
            {"plugin": gen.plugin_id, "generation": gen.number, "digest": gen.digest},
        )

    def _release_runtimes(self) -> None:
        """Zygotes of Python runtimes (environments) no generation runs in any more, nor
        the one a plugin serves from, are retired."""
        in_use = {g.python.key for g in self.live if g.python is not None}
        in_use |= {s.active.python.key for s in self.slots.values() if s.active and s.active.python}
        self.launchers.release(in_use)

    def flip(self, slot: PluginSlot, gen: Generation) -> Generation | None:
        """Route new requests to ``gen``; the previous generation drains in the background."""
        previous, slot.active = slot.active, gen
        slot.crash_loop = False
        self._publish_flip(gen, previous, after_crash=False)
        if previous is not None and previous is not gen:
            self._spawn_background(self._retire_after_first_request(previous, gen))
        return previous

    def _publish_flip(
        self, gen: Generation, previous: Generation | None, after_crash: bool
    ) -> None:
        """Traffic moved to ``gen``: the reload gate lets held requests go (unless it was
        a restart after a crash: those wait for the reload they were held for), the
        debugger's session follows."""
        self.bus.publish(
            events.GENERATION_FLIPPED,
            {
                "plugin": gen.plugin_id,
                "generation": gen.number,
                "previous": previous.number if previous is not None else None,
                "digest": gen.digest,
                "after_crash": after_crash,
            },
        )

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
        window = self.tuning.crash_window_s
        recent = [t for t in slot.crashes if now - t <= window]
        if len(recent) >= CRASH_LOOP_AFTER:
            slot.crash_loop = True
            self._log(
                slot,
                crashed.number,
                "system",
                f"crash loop: {len(recent)} crashes in {window:g} s; not restarting. "
                "Fix the plugin and save (or reload) to start it again.",
            )
            return
        first, most = (self.tuning.crash_backoff_first_s, self.tuning.crash_backoff_max_s)
        if slot.manifest.is_backend:
            first, most = (self.tuning.program_backoff_first_s, self.tuning.program_backoff_max_s)
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
            self._publish_flip(gen, crashed, after_crash=True)
            self._log(
                slot, gen.number, "system", f"restarted as generation {gen.number} after a crash"
            )

    def prepare_launchers(self, plugins: set[tuple[str, str]]) -> None:
        """Start warm parents/spares early: see LauncherPool.prepare."""
        self.launchers.prepare(plugins)

    async def stop_all(self) -> None:
        self.closing = True
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await asyncio.gather(*(self.stop_generation(gen) for gen in list(self.live)))
        await self.launchers.close()
        await self.network.close()

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
