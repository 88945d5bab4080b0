"""Backend plugins: a program (``backend.entry``) run as PowerX runs it.

PowerX starts the program with its listening address in the environment (``PORT``,
``POWERX_HTTP_ADDR``; PowerXPluginBase reads ``PX_BIND_ADDR``) and calls it ready once
its health path (``backend.health``) answers 200. A program sends no control message, so
the readiness the supervisor waits for is that probe, polled until it passes, the program
exits or the start timeout ends.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import socket
import string
import sys
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.generations import Generation
from powerx.host.sandbox import Sandbox
from powerx.manifest import Manifest

# Inside a sandbox the plugin has its own network namespace, so the port it prefers is
# free; the next generation, beside it, takes the next one up.
DEFAULT_INNER_PORT = 8080
# Between two health polls of a starting program: a refused connection costs ~0.1 ms, and
# this bounds how late a program that just began listening is seen (the reload's latency).
POLL_INTERVAL_S = 0.01
# Its probe timeout, restart backoff and stop grace are PowerX's supervisor's: see
# ``powerx.config.Tuning`` (``probe_timeout_s``, ``program_backoff_*``, ...).
# A leading `python` is the plugin's environment's interpreter when it declares its
# dependencies, else the DevKit's: the one with the server stack the developer installed
# beside powerx (a system python may have none).
_PYTHON_NAMES = frozenset({"python", "python3"})

__all__ = [
    "DELVE_PORT_OFFSET",
    "backend_environment",
    "backend_start_failed",
    "backend_unhealthy",
    "free_port",
    "inner_port",
    "listen_port",
    "program_argv",
    "wait_healthy",
]
# In a sandbox, Delve listens this far above the program's port (8080: 18080).
DELVE_PORT_OFFSET = 10000


def free_port() -> int:
    """A loopback port nothing listens on now (outside a sandbox)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def inner_port(preferred: int | None, taken: Collection[int]) -> int:
    """The port a generation listens on inside its sandbox: the manifest's (or 8080),
    or the next one up that no live generation of the plugin holds."""
    port = preferred or DEFAULT_INNER_PORT
    while port in taken:
        port = port + 1 if port < 65535 else 1024
    return port


def listen_port(manifest: Manifest, sandbox: Sandbox | None, live: Iterable[Generation]) -> int:
    """Where a backend program of ``manifest`` listens: in its ``sandbox``, the port it
    prefers unless a ``live`` generation holds it; outside, a free loopback port."""
    if sandbox is None:
        return free_port()
    taken = {
        sandbox.inner_port(g.port)
        for g in live
        if g.plugin_id == manifest.id and g.port is not None
    }
    assert manifest.backend is not None
    return inner_port(manifest.backend.port, {p for p in taken if p is not None})


def delve_port(run_dir: Path, program_port: int, sandboxed: bool) -> int | None:
    """Where Delve listens for a Go generation the debugger wants (None: the artefact
    has no Delve): in a sandbox, beside the program's own port (each live generation has
    its own); outside, a free loopback port."""
    info = json.loads((run_dir / "artefact.json").read_text(encoding="utf-8"))
    if info.get("debugger") != "dlv":
        return None
    return program_port + DELVE_PORT_OFFSET if sandboxed else free_port()


def backend_environment(port: int) -> dict[str, str]:
    """Where to listen, under each name PowerX and PowerXPluginBase use."""
    address = f"127.0.0.1:{port}"
    return {
        "PORT": str(port),
        "POWERX_HTTP_ADDR": address,
        "PX_BIND_ADDR": address,
        "PX_DEV_MODE": "true",
    }


def program_argv(
    manifest: Manifest, cwd: Path, env: Mapping[str, str], python: str | None = None
) -> list[str]:
    """``backend.entry`` as argv: split like a shell would, ``${PORT}``-style variables of
    the generation's environment filled in, a relative program path taken from ``cwd``;
    a leading ``python`` is ``python`` (the plugin's environment's), else the DevKit's."""
    assert manifest.backend is not None
    try:
        words = shlex.split(manifest.backend.entry)
    except ValueError as error:
        raise PowerXError(
            ErrorCode.BACKEND_ENTRY_INVALID,
            f"{manifest.id}: backend.entry {manifest.backend.entry!r} cannot be split: {error}.",
            "write it as a shell command line: a program and its arguments.",
            status=422,
            details={"plugin": manifest.id},
        ) from None
    argv = [string.Template(word).safe_substitute(env) for word in words]
    if argv[0] in _PYTHON_NAMES:
        argv[0] = python or sys.executable
    elif "/" in argv[0] and not os.path.isabs(argv[0]):
        argv[0] = str(cwd / argv[0])
    return argv


async def wait_healthy(
    probe: Callable[[], Awaitable[bool]],
    ready: asyncio.Future[dict[str, Any]],
    message: dict[str, Any],
) -> bool:
    """Poll ``probe`` until it passes, then resolve ``ready`` with ``message``; give up
    when ``ready`` is resolved otherwise (the program exited). The caller bounds the wait
    (the start timeout) and cancels this."""
    while not ready.done():
        if await probe():
            if not ready.done():
                ready.set_result(message)
            return True
        await asyncio.sleep(POLL_INTERVAL_S)
    return False


def backend_start_failed(manifest: Manifest, argv: list[str], why: str) -> PowerXError:
    return PowerXError(
        ErrorCode.BACKEND_START_FAILED,
        f"{manifest.id}: backend.entry {argv[0]!r} could not be started: {why}",
        "check backend.entry in plugin.yaml: a program (relative to the plugin folder) and "
        "its arguments; build it first if it is a build output.",
        status=422,
        details={"plugin": manifest.id, "argv": argv},
    )


def backend_unhealthy(manifest: Manifest, timeout_s: float, tail: list[str]) -> PowerXError:
    """The program ran but its health path did not answer 200 in time; ``tail``: its last
    output lines, which usually say why."""
    assert manifest.backend is not None
    health = manifest.backend.health
    said = ("; its last output: " + " | ".join(tail)) if tail else "; it wrote nothing"
    return PowerXError(
        ErrorCode.BACKEND_UNHEALTHY,
        f"{manifest.id}: backend.entry did not answer 200 at {health} within "
        f"{timeout_s:g} s{said}.",
        f"make the program listen on 127.0.0.1:$PORT (also in POWERX_HTTP_ADDR and "
        f"PX_BIND_ADDR) and answer GET {health} with 200 (or set backend.health); raise "
        "plugin_start_timeout_s in host_simulator.yaml if it needs longer to start.",
        status=422,
        details={"plugin": manifest.id, "health": health, "output": tail},
    )
