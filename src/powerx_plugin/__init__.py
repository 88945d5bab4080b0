"""Call the PowerX host API from inside a Python plugin, typed.

A handler plugin's ASGI app (Starlette, FastAPI) gets a client for the tenant of each
request with :func:`host_for`::

    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from powerx_plugin import HostApiError, host_for

    async def home(request: Request) -> JSONResponse:
        host = host_for(request)
        contacts = await host.list_contacts()  # list[Contact]
        try:
            visits = await host.kv_get("visits")
        except HostApiError as error:  # e.g. error.code == "not_found"
            visits = 0
        await host.kv_put("visits", visits + 1 if isinstance(visits, int) else 1)
        return JSONResponse({"tenant": host.tenant, "first": contacts[0]["name"]})

The simulator gives every plugin process ``POWERX_HOST_URL`` and a token holding only the
scopes its manifest declares; a call outside them raises :class:`HostApiError` with
``code == "permission_denied"`` (or ``"rbac_denied"``: the identity of the request being
served lacks the permission). A denial the plugin does not catch answers its request
``403`` with the host's ``{"error", "message", "fix"}``, as a Node plugin's does, and logs
one line: the simulator wraps a handler plugin's app in :func:`answer_denials`; a backend
plugin (its own server) can wrap its app the same way. Calls are for the tenant of the
request being served (``host_for(request)`` passes on its tenant and the simulator's grant
for it), or for the simulator's own tenant; a tenant without its grant is refused
(``tenant_not_granted``).

The package is typed (``py.typed``): ``mypy --strict`` checks a plugin's use of it, e.g.
``contact["nmae"]`` is an error. Node plugins have the same API as ``env.host``, typed by
the ``@powerx/plugin`` npm package.
"""

from __future__ import annotations

from powerx_plugin._client import GRANT_HEADER, TENANT_HEADER, HostApiError, HostClient, host_for
from powerx_plugin._denials import DENIAL_CODES, answer_denials
from powerx_plugin._types import (
    ASGIApp,
    Contact,
    JSONInput,
    JSONValue,
    Message,
    RequestWithHeaders,
    Tenant,
)

__all__ = [
    "DENIAL_CODES",
    "GRANT_HEADER",
    "TENANT_HEADER",
    "ASGIApp",
    "Contact",
    "HostApiError",
    "HostClient",
    "JSONInput",
    "JSONValue",
    "Message",
    "RequestWithHeaders",
    "Tenant",
    "answer_denials",
    "host_for",
]
