"""Keep browsers from driving the simulator: a page on another site must not change its
state (cross-site POST) or read it through a rebound DNS name (DNS rebinding).

- ``Host`` must be an IP address, a loopback name, or the name the simulator was told to
  bind, on the simulator's own surfaces; a rebound name such as ``attacker.example`` fails
  with 421 ``host_forbidden``.
- State-changing requests (anything but GET/HEAD/OPTIONS) that carry an ``Origin`` must come
  from the simulator's own origin; otherwise 403 ``origin_forbidden``.
- The dashboard and its reads answer loopback callers only.

Requests to ``/plugins/...`` are the plugin's business and pass through untouched.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.local_names import host_name, is_local

# PowerX serves its internal APIs under its API prefix too (/api/v1/internal/dev/plugins/...).
_GUARDED_PREFIXES = (
    "/internal/",
    "/api/internal/",
    "/api/v1/internal/",
    "/host/api/",
    "/dashboard",
    "/metrics",
)

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _is_address(name: str) -> bool:
    """An IP literal cannot be rebound; only names can."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class RequestGuard:
    def __init__(self, app: ASGIApp, bind: str) -> None:
        self.app = app
        self.allowed_hosts = {bind.lower()} - {"0.0.0.0", "::", ""}

    def _check(self, scope: Scope) -> None:
        path: str = scope.get("path", "")
        if not path.startswith(_GUARDED_PREFIXES):
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = host_name(headers.get("host", ""))
        if host and not (is_local(host) or _is_address(host) or host in self.allowed_hosts):
            raise PowerXError(
                ErrorCode.HOST_FORBIDDEN,
                f"The simulator does not answer to Host '{host}'.",
                "call it as 127.0.0.1 or localhost (a page on another site may be trying to "
                "reach it through DNS rebinding).",
                status=421,
            )
        origin = headers.get("origin")
        if scope.get("method", "GET") not in _SAFE_METHODS and origin is not None:
            origin_host = host_name(urlsplit(origin).netloc) if origin != "null" else "null"
            if not (is_local(origin_host) or origin_host in self.allowed_hosts):
                raise PowerXError(
                    ErrorCode.ORIGIN_FORBIDDEN,
                    f"A request from origin '{origin}' may not change the simulator's state.",
                    "use the powerx CLI or the dashboard the simulator serves itself.",
                    status=403,
                )
        client = scope.get("client")
        if path.startswith("/dashboard") and client and not is_local(str(client[0]).lower()):
            raise PowerXError(
                ErrorCode.DASHBOARD_LOCAL_ONLY,
                "The dashboard answers callers on this machine only.",
                "open it in a browser on the machine that runs the simulator.",
                status=403,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                self._check(scope)
            except PowerXError as error:
                response = JSONResponse(error.to_dict(), status_code=error.status)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
