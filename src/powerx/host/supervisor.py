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
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx

from powerx.config import Tuning
from powerx.debug.go_link import delve_command
from powerx.host.after_flip import retire_after_first_request, warm_next_after_first_request
from powerx.host.artefact_info import link_node_modules, node_preload
from powerx.host.crash_restarts import end_hung_program
from powerx.host.dev_vars import read_dev_vars, settings_digest
from powerx.host.generation_env import generation_environment, shim_argv
from powerx.host.generation_launch import delve_port_for, launch, passes_probe, program_health
from powerx.host.generation_output import attach_debugger, read_stderr, read_stdout, watch_exit
from powerx.host.generations import Generation, LogLine, PluginSlot
from powerx.host.launcher import (
    Launcher,
    LaunchSpec,
)
from powerx.host.launcher_pool import LauncherPool
from powerx.host.liveness import watch_liveness
from powerx.host.plugin_network import PluginNetwork, loopback_ports
from powerx.host.programs import (
    backend_environment,
    listen_port,
    program_argv,
    wait_healthy,
)
from powerx.host.python_runtime import PythonRuntime
from powerx.host.start_errors import start_error
from powerx.manifest import Manifest
from powerx.observe import events
from powerx.observe.events import EventBus
from powerx.runtimes.egress_guard import EgressPolicy


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
            delve_port = delve_port_for(self, manifest, run_dir, program_port)
            if delve_port is not None:  # halted under Delve until its breakpoints are in
                argv = delve_command(argv, delve_port)
            spec = LaunchSpec(manifest.runtime, argv, env, str(cwd))
        if sandbox is not None:  # the host API, the egress proxy, local services it names
            for port in {*self.network.simulator_ports(), *loopback_ports(manifest.egress)}:
                await sandbox.forward(port)
        process = await launch(self, manifest, spec)
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
            asyncio.create_task(read_stdout(self, slot, gen)),
            asyncio.create_task(read_stderr(self, slot, gen)),
            asyncio.create_task(watch_exit(self, slot, gen)),
        ]
        if program_port is not None and delve_port is not None:
            endpoint = {"event": "debug", "port": delve_port, "delve": True}
            self._spawn_background(attach_debugger(self, slot, gen, endpoint))
        early_probe = process.early_probe  # a spare's, sent before its order
        health: Callable[[], Awaitable[bool]] | None = None
        if program_port is not None:  # a program's readiness: its health path answers 200
            health = await program_health(self, gen, manifest, program_port)
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
                if await passes_probe(self, gen.url, early_probe):
                    gen.state = "running"
                    gen.start_ms = (time.perf_counter() - started) * 1000
                    if health is not None:
                        hung = functools.partial(end_hung_program, self, slot, gen)
                        liveness = watch_liveness(
                            health,
                            hung,
                            self.tuning.liveness_interval_s,
                            self.tuning.liveness_failures,
                        )
                        gen.tasks.append(asyncio.create_task(liveness))
                    self._spawn_background(
                        warm_next_after_first_request(self, gen, manifest.runtime)
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

    async def first_request(self, gen: Generation) -> None:
        """Until ``gen`` has answered its first request, or ``after_flip_wait_s``: work
        done sooner competes for the CPU with the very request the developer saved for."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gen.served.wait(), self.tuning.after_flip_wait_s)

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
            self._spawn_background(retire_after_first_request(self, previous, gen))
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

    def slot_for(self, manifest: Manifest, source_dir: Path) -> PluginSlot:
        slot = self.slots.get(manifest.id)
        if slot is None:
            slot = self.slots[manifest.id] = PluginSlot(manifest, source_dir)
        return slot

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
