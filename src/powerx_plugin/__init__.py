"""Helper for Python plugins: call the PowerX host API from inside a plugin.

    from powerx_plugin import host_for

    async def homepage(request):
        host = host_for(request)
        contacts = await host.list_contacts()

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
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import httpx

TENANT_HEADER = "x-powerx-tenant"
GRANT_HEADER = "x-powerx-grant"

__all__ = [
    "GRANT_HEADER",
    "TENANT_HEADER",
    "HostApiError",
    "HostClient",
    "answer_denials",
    "host_for",
]

_client: httpx.AsyncClient | None = None


class HostApiError(Exception):
    """The host refused a call; ``code``, ``message`` and ``fix`` come from the host."""

    def __init__(self, status: int, code: str, message: str, fix: str | None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fix = status, code, message, fix


def _shared_client() -> httpx.AsyncClient:
    global _client
    if _client is None:
        base_url = os.environ["POWERX_HOST_URL"]
        # In a sandbox the simulator is also on a unix socket bound into it: the direct way.
        socket_path = os.environ.get("POWERX_HOST_SOCKET")
        transport = httpx.AsyncHTTPTransport(uds=socket_path, verify=False) if socket_path else None
        # The simulator is plain HTTP on loopback: skip loading the CA bundle (~50 ms per
        # process, paid by every new generation's first request otherwise).
        _client = httpx.AsyncClient(
            base_url=base_url,
            timeout=10.0,
            verify=base_url.startswith("https://"),
            transport=transport,
        )
    return _client


class HostClient:
    """Calls ``/host/api`` as this plugin, for one tenant."""

    def __init__(
        self, tenant: str | None = None, token: str | None = None, grant: str | None = None
    ) -> None:
        self.tenant = tenant or os.environ.get("POWERX_TENANT", "")
        self._token = token or os.environ.get("POWERX_PLUGIN_TOKEN", "")
        self._grant = grant or ""

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"authorization": f"Bearer {self._token}", TENANT_HEADER: self.tenant}
        if self._grant:
            headers[GRANT_HEADER] = self._grant
        response = await _shared_client().request(
            method, "/host/api" + path, json=body, headers=headers
        )
        data = response.json() if response.content else None
        if response.status_code >= 400:
            info = data if isinstance(data, dict) else {}
            raise HostApiError(
                response.status_code,
                str(info.get("error", "host_error")),
                str(info.get("message", response.text)),
                info.get("fix"),
            )
        return data

    async def list_contacts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.call("GET", "/contacts")
        return result

    async def get_contact(self, contact_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", f"/contacts/{contact_id}")
        return result

    async def list_messages(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.call("GET", "/messages")
        return result

    async def send_message(self, to: str, text: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("POST", "/messages", {"to": to, "text": text})
        return result

    async def kv_get(self, key: str) -> Any:
        return (await self.call("GET", f"/kv/{key}"))["value"]

    async def kv_put(self, key: str, value: Any) -> None:
        await self.call("PUT", f"/kv/{key}", {"value": value})


def host_for(request: Any) -> HostClient:
    """A host client for the tenant of an incoming request (Starlette/ASGI request)."""
    headers: Mapping[str, str] = getattr(request, "headers", {})
    return HostClient(tenant=headers.get(TENANT_HEADER), grant=headers.get(GRANT_HEADER))


Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


# The plugin lacks the scope, or the identity of the request it serves lacks the permission.
DENIAL_CODES = frozenset({"permission_denied", "rbac_denied"})


def _denial(error: BaseException) -> HostApiError | None:
    """The permission denial ``error`` is, or holds (an ExceptionGroup from a task group)."""
    if isinstance(error, HostApiError):
        return error if error.code in DENIAL_CODES else None
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            if found := _denial(inner):
                return found
    return None


def answer_denials(app: ASGIApp) -> ASGIApp:
    """Wrap an ASGI app: a host permission denial it does not catch answers the request
    ``403`` with the host's JSON (``error``, ``message``, ``fix``) and logs one warning
    line, instead of a bare 500 and a traceback that ends, 40 lines down, in the reason.

    Starlette's (and FastAPI's) outermost middleware sends its 500 before it re-raises,
    so a 500 is held back until the app has finished: if a denial is what broke it, the
    403 goes instead. Every other response passes straight through.
    """

    async def wrapped(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        held: list[Message] = []  # a 500 and its body, sent only once the app is done
        started = False

        async def send_unless_500(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if message.get("status") == 500:
                    held.append(message)
                    return
            elif held:
                held.append(message)
                return
            await send(message)

        try:
            await app(scope, receive, send_unless_500)
        except Exception as error:
            denial = _denial(error)
            if denial is None or (started and not held):
                for message in held:
                    await send(message)
                raise
            await _answer_denial(scope, send, denial)
            return
        for message in held:
            await send(message)

    return wrapped


async def _answer_denial(scope: MutableMapping[str, Any], send: Send, denial: HostApiError) -> None:
    # The one line the log gets (the same as a Node plugin's): the reason and the fix.
    print(
        f"WARNING {denial.code}: {scope.get('method', '')} {scope.get('path', '')} "
        f"answered {denial.status}: {denial.message} fix: {denial.fix}",
        file=sys.stderr,
        flush=True,
    )
    body = json.dumps({"error": denial.code, "message": denial.message, "fix": denial.fix})
    await send(
        {
            "type": "http.response.start",
            "status": denial.status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})
