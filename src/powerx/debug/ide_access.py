"""Who may use a plugin's IDE port: the developer's own tools, nobody else.

The IDE ports (a DAP server per Python plugin, an inspector endpoint per Node plugin)
listen on loopback at predictable numbers (5679, 5680, ...). Whatever attaches there can
run code in the plugin, so reaching the port must not be enough:

- **a secret per port**, made when the port opens (so per plugin and per simulator run),
  kept in the simulator's memory only. The developer's tools get it from
  ``GET /internal/debug/sessions/{plugin}/ide``, which needs the developer credential
  (scope ``plugin:debug``); it is never in a plugin's environment, a file or a log.
  VS Code carries it in launch.json: in the inspector's WebSocket path
  (``ws://127.0.0.1:PORT/<secret>/<plugin>``: js-debug and Chrome DevTools cannot send
  headers, but take a URL) or in the DAP ``attach`` arguments (``powerxToken``).
- **no browser**: a web page can open a WebSocket to loopback, and send an HTTP request
  to any port. The inspector endpoint refuses, before the upgrade, a ``Host`` that is not
  a loopback address or ``localhost`` (DNS rebinding) and any ``Origin`` but DevTools' own
  (a page always sends its origin; js-debug sends none). The DAP server reads nothing but
  DAP framing (:func:`powerx.debug.dap.read_message`), so an HTTP request ends the
  connection unanswered.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

__all__ = [
    "DEVTOOLS_ORIGINS",
    "SECRET_ARGUMENT",
    "IdeAccess",
    "new_secret",
    "origin_allowed",
    "secret_matches",
]

# What Chrome's DevTools front end (devtools://devtools/bundled/js_app.html?ws=...) sends;
# no web page can have this origin.
DEVTOOLS_ORIGINS = frozenset({"devtools://devtools", "chrome-devtools://devtools"})
# Where a DAP attach request (launch.json) carries the secret; a "token" key, so masked
# wherever a configuration is logged.
SECRET_ARGUMENT = "powerxToken"


def new_secret() -> str:
    """256 random bits, URL-safe (it goes into a WebSocket path)."""
    return secrets.token_urlsafe(32)


def secret_matches(presented: object, secret: str) -> bool:
    """Compared in constant time; anything but a string is wrong."""
    return isinstance(presented, str) and hmac.compare_digest(
        presented.encode("utf-8", "replace"), secret.encode()
    )


def origin_allowed(header: str | None) -> bool:
    """No ``Origin`` (an IDE, a script) or DevTools' own; every web page sends its own."""
    return header is None or header.strip().lower() in DEVTOOLS_ORIGINS


@dataclass(frozen=True)
class IdeAccess:
    """How the developer's tools attach to one plugin's IDE port (secret included)."""

    plugin: str
    runtime: str
    host: str
    port: int
    secret: str
    source: str | None = None  # the plugin folder, which the IDE should open

    @property
    def websocket_path(self) -> str:
        return f"/{self.secret}/{self.plugin}"

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "plugin": self.plugin,
            "runtime": self.runtime,
            "host": self.host,
            "port": self.port,
            "secret": self.secret,
            "source": self.source,
        }
        if self.runtime.startswith("node"):
            address = f"{self.host}:{self.port}{self.websocket_path}"
            data["websocket"] = f"ws://{address}"
            data["devtools"] = f"devtools://devtools/bundled/js_app.html?ws={address}"
        return data
