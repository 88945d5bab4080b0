"""How the simulator and the plugin processes reach each other: each plugin's sandbox
(made on first use), the unix sockets bound into every sandbox (the host API, the host's
gRPC services), the egress proxy, and the base URL of every listener a generation reports
(a loopback port, or a unix socket in its sandbox), over one shared HTTP client."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from powerx.host.egress_proxy import EgressProxy
from powerx.host.generations import Generation
from powerx.host.sandbox import Sandbox
from powerx.host.socket_transport import SocketTransport, base_url
from powerx.runtimes import LISTEN_DIR_ENV
from powerx.runtimes.egress_guard import EgressPolicy

HEALTH_PATH = "/__powerx/health"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# The only variables of the developer's environment a plugin process inherits.
_PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT")


class PluginNetwork:
    def __init__(self, host_url: str, run_folder: Callable[[str], Path] | None) -> None:
        self.host_url = host_url
        # Set: each plugin runs in its own sandbox (host/sandbox.py), in this folder.
        self.run_folder = run_folder
        self.sandboxes: dict[str, Sandbox] = {}
        # More folders every sandbox sees, read-only: (folder, where inside).
        self.sandbox_mounts: list[tuple[Path, Path]] = []
        self.own_mounts: Callable[[str], list[tuple[Path, Path]]] = lambda plugin: []
        self.host_socket: Path | None = None  # the host API on a unix socket, for sandboxes
        self.grpc_socket: Path | None = None  # the host's gRPC services (always a socket)
        self.egress_proxy: EgressProxy | None = None  # see open_egress_proxy
        # One client for health probes and for proxied requests: the probe's keep-alive
        # connection is then already open when traffic flips to a new generation.
        self.transport = SocketTransport(
            httpx.Limits(max_connections=200, max_keepalive_connections=50)
        )
        self.http = httpx.AsyncClient(
            transport=self.transport, timeout=httpx.Timeout(60.0, connect=5.0), trust_env=False
        )
        self._unix_urls: dict[str, str] = {}  # socket path -> its base URL

    @property
    def contained(self) -> bool:
        return self.run_folder is not None

    def process_env(self, plugin: str = "") -> dict[str, str]:
        """The environment every process of ``plugin`` starts from (of none: a sandbox's)."""
        env = {name: os.environ[name] for name in _PASSED_ENV if name in os.environ}
        env.update({"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"})
        sandbox = self.sandbox(plugin) if plugin else None
        if sandbox is not None:  # the developer's home is not in the sandbox
            env.update({"HOME": "/tmp", "TMPDIR": "/tmp", LISTEN_DIR_ENV: str(sandbox.sockets)})
            if self.host_socket is not None:
                env["POWERX_HOST_SOCKET"] = str(self.host_socket)
        return env

    def sandbox(self, plugin: str) -> Sandbox | None:
        """The plugin's sandbox (made on first use; it starts with its first process),
        with the read-only folders of this plugin only (``own_mounts``: a Node plugin's
        node_modules) beside the shared ones."""
        if self.run_folder is None:
            return None
        if plugin not in self.sandboxes:
            self.sandboxes[plugin] = Sandbox(
                plugin,
                self.run_folder(plugin),
                self.process_env(),
                self.simulator_ports(),
                self.host_socket,
                self.grpc_socket,
                [*self.sandbox_mounts, *self.own_mounts(plugin)],
            )
        return self.sandboxes[plugin]

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

    async def open_egress_proxy(
        self,
        policy: Callable[[str], tuple[str, EgressPolicy] | None],
        on_blocked: Callable[[str, str, int, str], None],
    ) -> None:
        """Listen for the plugins' tools (curl, pip ...) before the first plugin starts:
        the proxy applies ``policy`` (of a generation's token); ``on_blocked``: a refusal."""
        proxy = EgressProxy(policy, on_blocked)
        await proxy.start()
        self.egress_proxy = proxy

    def simulator_ports(self) -> set[int]:
        """What a plugin reaches of the simulator: its host API and egress proxy."""
        ports = {httpx.URL(self.host_url).port or 80}
        if self.egress_proxy is not None and self.egress_proxy.port is not None:
            ports.add(self.egress_proxy.port)
        return ports

    def reach(self, listening: dict[str, Any]) -> str:
        """The base URL of a listener a plugin process reported (``port`` or ``unix``)."""
        path = listening.get("unix")
        if not path:
            return base_url(int(listening["port"]))
        if path not in self._unix_urls:
            self._unix_urls[path] = self.transport.add(str(path))
        return self._unix_urls[path]

    async def healthy(self, url: str, timeout_s: float | None = 5.0) -> bool:
        """The simulator's health probe of a generation (or a warm spare) at ``url``."""
        try:
            response = await self.http.get(f"{url}{HEALTH_PATH}", timeout=timeout_s)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def forget(self, gen: Generation) -> None:
        """``gen`` stopped: its unix socket route goes, and so do its ports and sockets
        brought out of its sandbox."""
        for path, url in list(self._unix_urls.items()):
            if url == gen.url:
                del self._unix_urls[path]
                await self.transport.remove(url)
        sandbox = self.sandbox(gen.plugin_id)
        if sandbox is not None:
            for port in gen.exposed:
                sandbox.release(port)
            for inner in gen.relayed:
                sandbox.release_socket(inner)

    async def reachable(self, gen: Generation, port: int) -> int:
        """The loopback port the simulator reaches ``port`` of ``gen`` on (its debugger):
        the same one, or, in a sandbox, one brought out of it."""
        sandbox = self.sandbox(gen.plugin_id)
        if sandbox is None:
            return port
        outer = await sandbox.expose(port)
        gen.exposed.append(outer)
        return outer

    def private_ports(self, plugin_id: str, port: int | None) -> set[int]:
        """The ports a generation reached at ``port`` may call its own: that one and, in a
        sandbox, the one it listens on inside (a redirect it builds names that one)."""
        if port is None:
            return set()
        sandbox = self.sandboxes.get(plugin_id)
        inner = sandbox.inner_port(port) if sandbox is not None else None
        return {port} if inner is None else {port, inner}

    async def debug_endpoint(self, gen: Generation, message: dict[str, Any]) -> dict[str, Any]:
        """debugpy's port or the inspector's WebSocket URL, as the simulator reaches it."""
        sandbox = self.sandbox(gen.plugin_id)
        if sandbox is None:
            return message
        message = dict(message, pid=gen.pid)  # it knows only its pid inside the sandbox
        if message.get("delve"):  # no secret: never on loopback
            message["unix"] = await sandbox.inner_socket(int(message["port"]))
            gen.relayed.append(int(message["port"]))
            return message
        if "port" in message:
            message["port"] = await self.reachable(gen, int(message["port"]))
        if "url" in message:
            url = httpx.URL(str(message["url"]))
            if url.port is not None:
                outer = await self.reachable(gen, url.port)
                message["url"] = str(url.copy_with(port=outer))
        return message

    async def close(self) -> None:
        """After every generation stopped: the sandboxes, the host socket, the client."""
        await asyncio.gather(*(sandbox.close() for sandbox in self.sandboxes.values()))
        if self.host_socket is not None:
            shutil.rmtree(self.host_socket.parent, ignore_errors=True)
        await self.http.aclose()


def loopback_ports(egress: Sequence[str]) -> set[int]:
    """Ports of this machine the manifest's ``egress`` names (``localhost:8080``)."""
    ports: set[int] = set()
    for entry in egress:
        host, _, port = entry.rpartition(":")
        if host.strip("[]").lower() in LOOPBACK_HOSTS and port.isdigit():
            ports.add(int(port))
    return ports
