"""The host API client: :class:`HostClient`, :func:`host_for` and :class:`HostApiError`."""

from __future__ import annotations

import os
from typing import cast
from urllib.parse import quote

import httpx

from powerx_plugin._types import (
    Contact,
    JSONInput,
    JSONValue,
    Message,
    RequestWithHeaders,
    Tenant,
)

TENANT_HEADER = "x-powerx-tenant"
GRANT_HEADER = "x-powerx-grant"

_client: httpx.AsyncClient | None = None


class HostApiError(Exception):
    """The host refused a call. ``status`` is the HTTP status; ``code``, ``message`` and
    ``fix`` are the host's own words.

    Codes a plugin meets: ``permission_denied`` (the manifest lacks the scope; ``fix``
    names it), ``rbac_denied`` (the identity of the request being served lacks the
    permission), ``tenant_not_granted``, ``not_found`` (a missing contact or kv key),
    ``invalid_body``. A denial the plugin does not catch answers its request ``403``
    (see :func:`~powerx_plugin.answer_denials`)::

        try:
            value = await host.kv_get("greeting")
        except HostApiError as error:
            if error.code != "not_found":
                raise
            value = "hello"
    """

    def __init__(self, status: int, code: str, message: str, fix: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fix = fix

    def __repr__(self) -> str:
        return f"HostApiError({self.status}, {self.code!r}, {self.message!r})"


def _shared_client() -> httpx.AsyncClient:
    """One connection pool per process, made on the first call."""
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
    """Calls the host API (``/host/api``) as this plugin, for one tenant.

    Inside a request handler, get one with :func:`host_for` (it acts for the request's
    tenant). ``HostClient()`` alone acts for the simulator's own tenant
    (``POWERX_TENANT``), e.g. in a background task::

        host = HostClient()
        for contact in await host.list_contacts():
            print(contact["name"], contact["email"])

    Each method needs a scope in the manifest's ``permissions`` (named below); without it
    the call raises :class:`HostApiError` with ``code == "permission_denied"``.
    """

    def __init__(
        self, tenant: str | None = None, token: str | None = None, grant: str | None = None
    ) -> None:
        self.tenant: str = tenant or os.environ.get("POWERX_TENANT", "")
        self._token = token or os.environ.get("POWERX_PLUGIN_TOKEN", "")
        self._grant = grant or ""

    async def call(self, method: str, path: str, body: JSONInput = None) -> JSONValue:
        """Any host API call: ``method`` and ``path`` under ``/host/api``, ``body`` sent
        as JSON; the answer's JSON (None when it has no body). The methods below are
        this, typed::

            tenant = await host.call("GET", "/tenant")
        """
        headers = {"authorization": f"Bearer {self._token}", TENANT_HEADER: self.tenant}
        if self._grant:
            headers[GRANT_HEADER] = self._grant
        response = await _shared_client().request(
            method, "/host/api" + path, json=body, headers=headers
        )
        data: JSONValue = response.json() if response.content else None
        if response.status_code >= 400:
            info = data if isinstance(data, dict) else {}
            fix = info.get("fix")
            raise HostApiError(
                response.status_code,
                str(info.get("error", "host_error")),
                str(info.get("message", response.text)),
                fix if isinstance(fix, str) else None,
            )
        return data

    async def list_contacts(self) -> list[Contact]:
        """The tenant's contacts (``contacts:read``)::

        names = [contact["name"] for contact in await host.list_contacts()]
        """
        return cast(list[Contact], await self.call("GET", "/contacts"))

    async def get_contact(self, contact_id: str) -> Contact:
        """One contact by id (``contacts:read``); ``HostApiError`` ``not_found`` if the
        tenant has none with that id::

            contact = await host.get_contact("c_001")
        """
        return cast(Contact, await self.call("GET", f"/contacts/{_segment(contact_id)}"))

    async def search_contacts(self, query: str) -> list[Contact]:
        """Contacts whose name contains ``query``, ignoring case (``contacts:read``;
        host API 3.0)::

            matches = await host.search_contacts("ada")
        """
        path = f"/contacts/search?q={quote(query, safe='')}"
        return cast(list[Contact], await self.call("GET", path))

    async def list_messages(self) -> list[Message]:
        """The messages sent in the tenant (``messages:read``)."""
        return cast(list[Message], await self.call("GET", "/messages"))

    async def send_message(self, to: str, text: str) -> Message:
        """Send ``text`` to the contact ``to`` (``messages:write``); the stored message::

        sent = await host.send_message("c_001", "Welcome aboard!")
        print(sent["id"])
        """
        return cast(Message, await self.call("POST", "/messages", {"to": to, "text": text}))

    async def kv_get(self, key: str) -> JSONValue:
        """The value under ``key`` in this plugin's key-value store for the tenant
        (``kv:read``); ``HostApiError`` ``not_found`` if there is none::

            visits = await host.kv_get("visits")
        """
        answer = await self.call("GET", f"/kv/{_segment(key)}")
        return answer.get("value") if isinstance(answer, dict) else None

    async def kv_put(self, key: str, value: JSONInput) -> None:
        """Store ``value`` (any JSON) under ``key`` (``kv:write``)::

        await host.kv_put("settings", {"theme": "dark", "size": 3})
        """
        await self.call("PUT", f"/kv/{_segment(key)}", {"value": value})

    async def kv_delete(self, key: str) -> None:
        """Remove ``key`` (``kv:write``); removing a missing key is not an error."""
        await self.call("DELETE", f"/kv/{_segment(key)}")

    async def get_tenant(self) -> Tenant:
        """The tenant this client acts for: id, name and plan (``tenant:read``; host
        API 3.0)."""
        return cast(Tenant, await self.call("GET", "/tenant"))


def _segment(value: str) -> str:
    """``value`` as one path segment (a key with ``/`` or ``?`` stays one key)."""
    return quote(value, safe="")


def host_for(request: RequestWithHeaders) -> HostClient:
    """A host client for the tenant of the request being served (a Starlette or FastAPI
    ``Request``): the simulator names the tenant and grants this plugin access to it in
    the request's headers::

        async def home(request: Request) -> JSONResponse:
            host = host_for(request)
            contacts = await host.list_contacts()
            return JSONResponse({"tenant": host.tenant, "contacts": len(contacts)})
    """
    headers = request.headers
    return HostClient(tenant=headers.get(TENANT_HEADER), grant=headers.get(GRANT_HEADER))
