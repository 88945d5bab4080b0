"""Helper for Python plugins: call the PowerX host API from inside a plugin.

    from powerx_plugin import host_for

    async def homepage(request):
        host = host_for(request)
        contacts = await host.list_contacts()

The simulator gives every plugin process ``POWERX_HOST_URL`` and a token holding only the
scopes its manifest declares; a call outside them raises :class:`HostApiError` with
``code == "permission_denied"``. Calls are for the tenant of the request being served
(``host_for(request)`` passes on its tenant and the simulator's grant for it), or for
the simulator's own tenant; a tenant without its grant is refused (``tenant_not_granted``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import httpx

TENANT_HEADER = "x-powerx-tenant"
GRANT_HEADER = "x-powerx-grant"

__all__ = ["GRANT_HEADER", "TENANT_HEADER", "HostApiError", "HostClient", "host_for"]

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
        # The simulator is plain HTTP on loopback: skip loading the CA bundle (~50 ms per
        # process, paid by every new generation's first request otherwise).
        _client = httpx.AsyncClient(
            base_url=base_url, timeout=10.0, verify=base_url.startswith("https://")
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
