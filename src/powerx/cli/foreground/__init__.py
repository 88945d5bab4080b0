"""Run the simulator in the foreground: bind, build, serve, mount, then serve until stopped.

The port is bound before anything is built, so a clash is reported at once; the server
answers before plugins start, so a plugin may call the host API while it starts up.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import uvicorn

from powerx import running
from powerx.auth import require_credential
from powerx.bundling import Artefact, build_artefact
from powerx.cli import hotkeys
from powerx.cli.foreground.actions import SimulatorActions
from powerx.client.dev import SimulatorClient
from powerx.config import SimulatorConfig
from powerx.environments import find_declaration
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.app import AppControls, create_app
from powerx.host.generations import Generation, LogLine
from powerx.host.header_timeout import with_header_timeout
from powerx.host.mock_data import MockDataChange
from powerx.host.preflight import PluginPlan
from powerx.host.simulator import Simulator
from powerx.paths import host_info_file
from powerx.reload.executor import DevReporter, run_dev


class StartReporter(Protocol):
    """How the foreground run tells the person what is happening (the CLI renders it)."""

    def building(self, plan: PluginPlan) -> None: ...
    def built(self, artefact: Artefact) -> None: ...
    def mounted(self, plan: PluginPlan, generation: Generation) -> None: ...
    def not_mounted(self, plan: PluginPlan, error: PowerXError) -> None: ...
    def ready(self, url: str, simulator: Simulator, dashboard_key: str) -> None: ...
    def log(self, line: LogLine) -> None: ...
    def mock_data(self, change: MockDataChange) -> None: ...
    def stopping(self) -> None: ...
    def say(self, text: str) -> None: ...


class _Server(uvicorn.Server):
    """uvicorn, minus its habit of re-raising the captured signal once it has shut down:
    re-raised inside our event loop it surfaced as a KeyboardInterrupt traceback. Ctrl-C
    or SIGTERM asks for a graceful stop; a second one forces it (uvicorn's handle_exit)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        handled = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.handle_exit, sig, None)
                handled.append(sig)
        try:
            yield
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)


def bind_socket(bind: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when
    # the listening socket says so, and without it every keep-alive response waits ~40 ms
    # for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((bind, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PowerXError(
                ErrorCode.PORT_IN_USE,
                f"Port {port} on {bind} is already in use.",
                f"stop what holds it (`powerx host stop` if it is a simulator), or pick another "
                f"port: `--port {port + 1}` or POWERX_HTTP_PORT={port + 1}.",
            ) from None
        raise PowerXError(
            ErrorCode.BIND_FAILED,
            f"Cannot listen on {bind}:{port}: {exc.strerror}.",
            "use --bind 127.0.0.1 (the default) or an address of this machine.",
        ) from None
    sock.listen(256)
    sock.setblocking(False)
    return sock


def read_host_info() -> dict[str, object] | None:
    try:
        data: dict[str, object] = json.loads(host_info_file().read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return data


def _write_host_info(simulator: Simulator, port: int, plugins: list[Path]) -> None:
    path = host_info_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {
        "url": simulator.url,
        "pid": os.getpid(),
        "port": port,
        "image": simulator.image.name,
        "started_at": simulator.started_at,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)
    # So that commands run outside the project folder (in a plugin folder) find it too.
    running.register(info, path.parent, plugins)


def _remove_host_info() -> None:
    running.unregister(os.getpid())
    info = read_host_info()
    if info is not None and info.get("pid") == os.getpid():
        host_info_file().unlink(missing_ok=True)


def _dependency_progress(reporter: StartReporter, plugin: str) -> Callable[[str], None]:
    """Where a plugin's install (a Node plugin's build runs npm) tells its steps."""
    return lambda line: reporter.say(f"{plugin}  dependencies: {line}")


def build_all(
    plans: list[PluginPlan], state_dir: Path, reporter: StartReporter, keep_going: bool = False
) -> list[Artefact | PowerXError]:
    """Build each plugin; a build error ends the start, or, with ``keep_going``, stands in
    for that plugin's artefact."""
    built: list[Artefact | PowerXError] = []
    for plan in plans:
        reporter.building(plan)
        try:
            artefact = build_artefact(
                plan.manifest,
                plan.path,
                state_dir / "build" / plan.manifest.id,
                _dependency_progress(reporter, plan.manifest.id),
            )
        except PowerXError as error:
            if not keep_going:
                raise
            reporter.not_mounted(plan, error)
            built.append(error)
            continue
        reporter.built(artefact)
        built.append(artefact)
    return built


async def _mount_all(
    simulator: Simulator,
    plans: list[PluginPlan],
    built: list[Artefact | PowerXError],
    reporter: StartReporter,
    keep_going: bool,
) -> None:
    """Mount what was built. With ``keep_going`` (``--watch``) a plugin that did not build
    or start is recorded as failed, and the others serve: its next clean save mounts it."""
    for plan, artefact in zip(plans, built, strict=True):
        if isinstance(artefact, PowerXError):  # reported when its build failed
            simulator.reload_failures.failed(
                plan.manifest.id, artefact.code, artefact.message, artefact.fix
            )
            continue
        try:
            reporter.mounted(plan, await simulator.mount(artefact))
        except PowerXError as error:
            if not keep_going:
                raise
            reporter.not_mounted(plan, error)
            simulator.reload_failures.failed(plan.manifest.id, error.code, error.message, error.fix)


def url_for(bind: str, port: int) -> str:
    host = "127.0.0.1" if bind in {"0.0.0.0", ""} else bind
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _watch_in_process(
    simulator: Simulator,
    plans: list[PluginPlan],
    state_dir: Path,
    dev_reporter: DevReporter,
    stop: asyncio.Event,
    poll: bool,
) -> None:
    """``host start --watch``: the dev loop in this process, still talking HTTP to the host
    (uploads are admitted, audited and counted as any other), bar the pending-reload and
    watcher notes."""
    client = SimulatorClient(
        simulator.url,
        require_credential().token,
        local_pending=simulator.note_pending,
        local_watch=simulator.note_watch,
        local_type_check=simulator.note_type_check,
    )
    try:
        await run_dev(
            [plan.path for plan in plans],
            client,
            state_dir / "build",
            dev_reporter,
            stop,
            force_polling=poll,
            initial_push=False,
        )
    finally:
        await client.close()


def _declares_dependencies(plugin_dir: Path) -> bool:
    """Python's requirements (its zygote runs in their environment) or a Node plugin's
    package.json (its spare loads the packages, its sandbox shows its node_modules)."""
    try:
        return find_declaration(plugin_dir) is not None or (plugin_dir / "package.json").is_file()
    except PowerXError:
        return True  # unreadable: its reload says why


async def _serve(
    config: SimulatorConfig,
    plans: list[PluginPlan],
    sock: socket.socket,
    state_dir: Path,
    reporter: StartReporter,
    dev_reporter: DevReporter | None,
    poll: bool,
) -> None:
    port = sock.getsockname()[1]
    url = url_for(config.bind, port)
    # Without --watch a plugin that fails ends the start (exit 1): nothing in this process
    # would mount it later, and a script that starts the simulator needs every plugin up
    # or a clear failure, not 503s later with the cause in another process's output.
    keep_going = dev_reporter is not None
    built = build_all(plans, state_dir, reporter, keep_going)
    simulator = Simulator(
        config, state_dir, url, on_log=reporter.log, on_mock_data=reporter.mock_data
    )
    await simulator.start_services()
    sockets = [sock]
    if simulator.supervisor.contained:  # plugins in sandboxes call the host API here
        sockets.append(simulator.supervisor.open_host_socket())
    # A plugin with its own dependencies gets its zygote (spare) once they are ready.
    simulator.supervisor.prepare_launchers(
        {(p.manifest.runtime, p.manifest.id) for p in plans if not _declares_dependencies(p.path)}
    )

    async def on_shutdown() -> None:
        reporter.stopping()
        await simulator.stop()
        _remove_host_info()

    controls = AppControls()
    server = _Server(
        uvicorn.Config(
            create_app(simulator, on_shutdown, controls),
            http=with_header_timeout(config.header_timeout_s),
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
    )
    serving = asyncio.create_task(server.serve(sockets=sockets))
    while not server.started:
        if serving.done():
            serving.result()
            raise PowerXError(
                ErrorCode.HOST_START_FAILED,
                "The simulator's HTTP server did not start.",
                "run again with POWERX_DEBUG=1 to see why.",
            )
        await asyncio.sleep(0.01)
    try:
        await _mount_all(simulator, plans, built, reporter, keep_going)
    except BaseException:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await serving
        raise
    _write_host_info(simulator, port, [plan.path for plan in plans])
    await simulator.started()
    closer = asyncio.create_task(_end_streams_on_exit(server, simulator))
    reporter.ready(url, simulator, controls.dashboard_key)
    stop_watching = asyncio.Event()
    watcher = None
    if dev_reporter is not None:
        watcher = asyncio.create_task(
            _watch_in_process(simulator, plans, state_dir, dev_reporter, stop_watching, poll)
        )
    stop_waiter = asyncio.create_task(controls.shutdown_requested.wait())
    with contextlib.ExitStack() as keys:
        if hotkeys.wanted():
            reporter.say(hotkeys.legend())
            actions = SimulatorActions(simulator, controls)
            keys.enter_context(hotkeys.listening(hotkeys.Hotkeys(actions, reporter.say)))
        await asyncio.wait({serving, stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
    stop_watching.set()
    if watcher is not None:
        with contextlib.suppress(Exception):
            await watcher
    server.should_exit = True
    await serving
    stop_waiter.cancel()
    closer.cancel()


async def _end_streams_on_exit(server: uvicorn.Server, simulator: Simulator) -> None:
    """uvicorn waits for open connections before it shuts down; open SSE streams (a
    dashboard tab, `powerx logs --follow`) would hold it forever, so end them first."""
    while not server.should_exit:
        await asyncio.sleep(0.1)
    simulator.observer.bus.close()
    simulator.observer.logs.bus.close()
    simulator.observer.requests.bus.close()


def run_foreground(
    config: SimulatorConfig,
    plans: list[PluginPlan],
    state_dir: Path,
    reporter: StartReporter,
    dev_reporter: DevReporter | None = None,
    poll: bool = False,
) -> None:
    """Serve until Ctrl-C, SIGTERM or ``powerx host stop``; plugins stop with the simulator.
    With a ``dev_reporter`` the plugin folders are watched and hot-reloaded too."""
    sock = bind_socket(config.bind, config.ports.http)
    try:
        asyncio.run(_serve(config, plans, sock, state_dir, reporter, dev_reporter, poll))
    finally:
        sock.close()
