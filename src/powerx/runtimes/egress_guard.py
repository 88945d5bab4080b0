"""Egress guard for Python plugin processes: no production PowerX API, and no host outside
the manifest's ``egress`` list and the simulator.

Enforced with an audit hook (PEP 578), which the plugin cannot remove: name resolution
(``socket.getaddrinfo``/``gethostbyname``) and connections (``socket.connect``,
``socket.sendto``) are checked before they happen, so a blocked host is never even
looked up. Subprocesses whose arguments name a production host are refused too. Each
block raises :class:`EgressBlocked` (an ``OSError``, so HTTP clients report it as a
connection error carrying our message) and is reported to the simulator on stdout.

Policy comes from ``POWERX_EGRESS`` (JSON: ``allow`` host patterns, ``deny`` production
patterns, ``simulator`` "host:port"), set by the supervisor per generation.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

CONTROL_PREFIX = "@@powerx "
POLICY_ENV = "POWERX_EGRESS"
FIX_PRODUCTION = (
    "plugins in the simulator must not call production PowerX; use the mock host API through "
    "POWERX_HOST_URL (the powerx_plugin helper does)"
)
FIX_EGRESS = "add the host to `egress` in powerx.plugin.yaml, or call it through the host API"
_HOST_IN_TEXT = re.compile(r"(?:[a-z][a-z0-9+.-]*://)?(?:[^\s/@:]+(?::[^\s/@]*)?@)?([a-z0-9.-]+)")
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
_INSTALLED = "_powerx_egress_guard_installed"  # on sys: this module may be loaded twice


class EgressBlocked(PermissionError):
    """Raised where a plugin tried to reach a host it may not reach."""


def _normalise(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def matches(host: str, pattern: str) -> bool:
    """``api.powerx.io`` matches itself; ``*.powerx.io`` matches any subdomain."""
    host, pattern = _normalise(host), _normalise(pattern)
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) or host == pattern[2:]
    return host == pattern


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class EgressPolicy:
    def __init__(
        self, allow: Iterable[str], deny: Iterable[str], simulator: str, proxy: str = ""
    ) -> None:
        self.allow = [_normalise(a) for a in allow]
        self.deny = [_normalise(d) for d in deny]
        sim_host, _, sim_port = simulator.rpartition(":")
        self.simulator_host = _normalise(sim_host)
        self.simulator_port = int(sim_port) if sim_port.isdigit() else None
        proxy_port = proxy.rpartition(":")[2]
        # The simulator's egress proxy (on loopback) checks what passes through it.
        self.proxy_port = int(proxy_port) if proxy_port.isdigit() else None
        self.resolved: set[str] = set()  # addresses of allowed names, learnt on lookup

    @classmethod
    def from_env(cls, raw: str | None) -> EgressPolicy | None:
        if not raw:
            return None
        data = json.loads(raw)
        return cls(
            data.get("allow", []),
            data.get("deny", []),
            str(data.get("simulator", "")),
            str(data.get("proxy", "")),
        )

    def verdict(self, host: str, port: int | None) -> tuple[str, str, str] | None:
        """None when allowed, else (reason code, what it means, fix)."""
        host = _normalise(host)
        if any(matches(host, pattern) for pattern in self.deny):
            return "production_host", "production PowerX API", FIX_PRODUCTION
        at_simulator = host == self.simulator_host or _is_loopback(host)
        local_ports = (self.simulator_port, self.proxy_port, None)
        if self.simulator_port is not None and port in local_ports and at_simulator:
            return None
        if host in self.resolved or any(matches(host, pattern) for pattern in self.allow):
            return None
        return "egress_not_allowed", "not in the manifest's egress list", FIX_EGRESS


def _report(host: str, port: int | None, route: str, reason: str) -> None:
    line = json.dumps(
        {"event": "egress_blocked", "host": host, "port": port, "route": route, "reason": reason}
    )
    try:
        sys.__stdout__.write(CONTROL_PREFIX + line + "\n")  # type: ignore[union-attr]
        sys.__stdout__.flush()  # type: ignore[union-attr]
    except (OSError, ValueError, AttributeError):
        pass


def _hosts_in(args: Iterable[object]) -> list[str]:
    found = []
    for arg in args:
        text = os.fsdecode(arg) if isinstance(arg, str | bytes) else ""
        for token in text.split():
            match = _HOST_IN_TEXT.match(token.lower())
            if match and "." in match.group(1):
                found.append(match.group(1))
    return found


def install(policy: EgressPolicy) -> None:
    """Install the audit hook (once per process; it cannot be removed)."""
    if getattr(sys, _INSTALLED, False):
        return  # installed at start-up by python_child/sitecustomize.py: once is enough
    setattr(sys, _INSTALLED, True)
    state = threading.local()
    real_getaddrinfo: Callable[..., Any] = socket.getaddrinfo

    def block(host: str, port: int | None, route: str) -> None:
        verdict = policy.verdict(host, port)
        if verdict is None:
            return
        reason, meaning, fix = verdict
        _report(host, port, route, reason)
        where = f"{host}:{port}" if port else host
        raise EgressBlocked(f"powerx: egress to {where} blocked ({meaning}); fix: {fix}")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if getattr(state, "inside", False):
            return
        state.inside = True
        try:
            if event == "socket.getaddrinfo":
                host, port = args[0], args[1]
                if isinstance(host, bytes):
                    host = host.decode(errors="replace")
                if isinstance(host, str) and host:
                    block(host, port if isinstance(port, int) else None, "getaddrinfo")
            elif event in {"socket.gethostbyname", "socket.gethostbyname_ex"}:
                block(str(args[0]), None, "gethostbyname")
            elif event in {"socket.connect", "socket.sendto"}:
                address = args[1]
                if isinstance(address, tuple) and len(address) >= 2:
                    block(str(address[0]), int(address[1]), event)
            elif event in {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn"}:
                argv = args[1] if event != "os.system" else [args[0]]
                values = argv if isinstance(argv, list | tuple) else [argv]
                for host in _hosts_in(values):
                    if any(matches(host, pattern) for pattern in policy.deny):
                        block(host, None, event)
        finally:
            state.inside = False

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        """Learn the addresses of allowed names, so connecting to them passes."""
        results = real_getaddrinfo(host, port, *args, **kwargs)
        for result in results:
            policy.resolved.add(_normalise(str(result[4][0])))
        return results

    socket.getaddrinfo = getaddrinfo
    sys.addaudithook(hook)


def install_from_env() -> None:
    policy = EgressPolicy.from_env(os.environ.get(POLICY_ENV))
    if policy is not None:
        install(policy)
