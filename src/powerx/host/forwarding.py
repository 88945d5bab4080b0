"""What a reverse proxy owes the app behind it, and the browser in front of it.

A plugin answers at a private loopback port, mounted under a prefix of the simulator
(``/_p/<id>`` as PowerX's router mounts it, or the older ``/plugins/<id>``). It is told
where it really is (the original ``Host``, ``X-Forwarded-Host``, ``-Proto`` and
``-Prefix``), and what it answers is put back on the simulator's origin: a ``Location``
aimed at its private address, or at a path of its own without the prefix, is rewritten
onto the simulator's origin under the prefix (as nginx's ``proxy_redirect default``
does), so a trailing-slash redirect never sends a browser to the private port.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit, urlunsplit

# Not forwarded either way: they describe one connection, not the message.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# Set again by the simulator's own server: passed on, a response would carry them twice.
SERVER_SET = frozenset({"date", "server"})
_PRIVATE_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def forwarded_headers(host: str, scheme: str, prefix: str) -> list[tuple[str, str]]:
    """The ``X-Forwarded-*`` headers for a request that arrived as ``scheme://host``."""
    return [
        ("host", host),
        ("x-forwarded-host", host),
        ("x-forwarded-proto", scheme),
        ("x-forwarded-prefix", prefix),
    ]


def _under(prefix: str, path: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def _prefixed(prefix: str, path: str) -> str:
    if _under(prefix, path):
        return path  # the app knew its root path already
    return prefix.rstrip("/") + (path if path.startswith("/") else "/" + path)


def rewrite_location(
    location: str, private_ports: Collection[int], origin: str, prefix: str
) -> str:
    """``location`` as the browser must follow it: on ``origin`` (``scheme://host``) and
    under ``prefix`` when it points into the plugin; anything else is left alone."""
    parts = urlsplit(location)
    if not parts.scheme and not parts.netloc:
        if not parts.path.startswith("/"):
            return location  # relative to the current URL: already right
        return urlunsplit(("", "", _prefixed(prefix, parts.path), parts.query, parts.fragment))
    public = urlsplit(origin)
    host = (parts.hostname or "").lower()
    private = parts.port in private_ports and host in _PRIVATE_HOSTS
    if not private and parts.netloc.lower() != public.netloc.lower():
        return location  # another site: the plugin's business
    path = _prefixed(prefix, parts.path or "/")
    return urlunsplit((public.scheme, public.netloc, path, parts.query, parts.fragment))
