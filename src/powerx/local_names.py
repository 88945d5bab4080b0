"""Which names and addresses mean this machine: the one rule behind every listener's
``Host`` check (the simulator's HTTP surface and the debug ports)."""

from __future__ import annotations

import ipaddress

__all__ = ["host_name", "is_local", "local_host"]

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def host_name(value: str) -> str:
    """``127.0.0.1:8787`` -> ``127.0.0.1``; ``[::1]:8787`` -> ``::1``; lower-cased."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def is_local(name: str) -> bool:
    """A loopback address or a loopback name (not one a page's DNS could rebind)."""
    if name in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def local_host(header: str | None) -> bool:
    """Whether a ``Host`` header names this machine by a loopback address or ``localhost``
    (with or without a port)."""
    return bool(header) and is_local(host_name(header or ""))
