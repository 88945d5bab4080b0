"""The mock host API under ``/host/api``: the image decides what exists, the manifest
decides what a plugin may call, the developer decides for which tenant.

A plugin authenticates with its per-generation token; the scopes it holds are exactly
the manifest's ``permissions`` minus what the permission policy denies. Its calls are for
the simulator's tenant (config ``tenant``), or for the tenant the developer chose for the
request it is serving (``X-PowerX-Tenant`` on the request to the plugin): the simulator
hands that request a grant (``X-PowerX-Grant``: the request's identity, and an HMAC of the
generation's token, the tenant and that identity) that the plugin's host client sends
back. A tenant named without its grant is refused (403 ``tenant_not_granted``), counted
and audited: a plugin never picks one.

A call is also made as the identity of the request it serves (the grant's; without a
grant, the run's identity): that identity's perms must grant the API's scope, matched as
PowerX matches perms (``contacts:read``, ``contacts:*`` or ``*``; host/rbac.py), else 403
``rbac_denied``, counted and audited like the refusals of requests to tools.

Each call is also kept with the request it was made for, in the request inspector: the one
whose ``X-Request-Id`` it sends back, else the one its generation is serving for that
tenant and identity (observe/requests.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from powerx.config import Identity, PermissionPolicy
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.generations import PluginSlot
from powerx.host.rbac import Permission, RbacGate, has_permission
from powerx.host.routes.guards import read_json
from powerx.host.supervisor import Supervisor
from powerx.host.tenants import TenantData
from powerx.images import HostApi, HostImage
from powerx.observe.requests import REQUEST_ID_HEADER, HostCall, RequestInspector

TENANT_HEADER = "x-powerx-tenant"
GRANT_HEADER = "x-powerx-grant"


@dataclass(frozen=True)
class Denial:
    plugin: str
    api: str
    scope: str
    reason: str
    enforced: bool = False  # refused whatever the permission policy's mode
    identity: str | None = None  # the identity refused (an RBAC denial), if any


def _route_pattern(template: str) -> re.Pattern[str]:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return re.compile(f"^{regex}$")


class Gateway:
    def __init__(
        self,
        image: HostImage,
        policy: PermissionPolicy,
        supervisor: Supervisor,
        default_tenant: str,
        on_denied: Callable[[Denial], None] | None = None,
        identities: Mapping[str, Identity] | None = None,
        default_identity: str | None = None,
        rbac: RbacGate | None = None,
        inspector: RequestInspector | None = None,
    ) -> None:
        self.image = image
        self.policy = policy
        self.supervisor = supervisor
        self.default_tenant = default_tenant
        self.identities = dict(identities or {})
        self.default_identity = default_identity
        self.rbac = rbac or RbacGate(self.identities)
        self.data = TenantData()
        self.on_denied = on_denied
        self.inspector = inspector
        self._grant_key = secrets.token_bytes(32)
        # Literal routes before parametrised ones, so /contacts/search beats /contacts/{id}.
        self._routes = sorted(
            ((api, _route_pattern(api.path)) for api in image.apis),
            key=lambda pair: pair[0].path.count("{"),
        )

    def _match(self, method: str, path: str) -> tuple[HostApi, dict[str, str]]:
        allowed_elsewhere = False
        for api, pattern in self._routes:
            found = pattern.match(path)
            if found is None:
                continue
            if api.method == method:
                return api, found.groupdict()
            allowed_elsewhere = True
        if allowed_elsewhere:
            raise PowerXError(
                ErrorCode.METHOD_NOT_ALLOWED,
                f"{method} is not supported on /host/api{path}.",
                "see the host API reference for the methods of this path.",
                status=405,
            )
        raise PowerXError(
            ErrorCode.API_NOT_AVAILABLE,
            f"Host API {self.image.api_version} ({self.image.name}) has no API at "
            f"{method} /host/api{path}.",
            f"use an API this image offers ({', '.join(a.name for a in self.image.apis)}), "
            "or run a newer image.",
            status=404,
        )

    def _mac(self, token: str, tenant: str, identity: str) -> str:
        message = f"{token}\n{tenant}\n{identity}".encode()
        return hmac.new(self._grant_key, message, hashlib.sha256).hexdigest()

    def grant(self, token: str, tenant: str, identity: str = "") -> str:
        """The grant for ``tenant`` and ``identity`` to the generation holding ``token``:
        handed to each request the developer sends it. It names the identity (base64url),
        so the plugin's host client needs to send back only this header."""
        name = base64.urlsafe_b64encode(identity.encode()).decode().rstrip("=")
        return f"{name}.{self._mac(token, tenant, identity)}"

    def _granted_identity(self, token: str, tenant: str, grant: str) -> str | None:
        """The identity ``grant`` was made for, if it is the simulator's for ``tenant``."""
        encoded, _, mac = grant.rpartition(".")
        try:
            identity = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        expected = self._mac(token, tenant, identity)
        return identity if hmac.compare_digest(mac.encode(), expected.encode()) else None

    def _context(
        self, request: Request, token: str, slot: PluginSlot, api: HostApi
    ) -> tuple[str, str | None]:
        """The tenant and the identity a call is made for: those of the request whose grant
        it carries, else the simulator's own tenant and the run's identity."""
        named = request.headers.get(TENANT_HEADER) or self.default_tenant
        grant = request.headers.get(GRANT_HEADER, "")
        identity = self._granted_identity(token, named, grant) if grant else None
        if identity is not None:
            return named, identity
        if named == self.default_tenant:
            return named, self.default_identity
        self._deny(slot, api, "tenant", "tenant named without the developer's grant")
        raise PowerXError(
            ErrorCode.TENANT_NOT_GRANTED,
            f"Plugin {slot.manifest.id} called {api.name} for tenant '{named[:100]}', which no "
            "request it serves was sent for.",
            "call through the host client of the request (host_for(request) in Python, "
            "env.host in Node): it carries the request's tenant and grant.",
            status=403,
            details={"plugin": slot.manifest.id, "api": api.name},
        )

    def _authorize_identity(self, slot: PluginSlot, api: HostApi, name: str | None) -> None:
        """The identity the call is made for must hold the API's scope, as a request to a
        tool must hold the tool's permission."""
        identity = self.identities.get(name) if name is not None else None
        if identity is None or name is None:  # a simulator run without identities
            return
        need = Permission.of_scope(api.scope)
        if has_permission(identity.perms, need):
            return
        what = f"host API {api.name}"
        raise self.rbac.refuse(slot.manifest.id, name, identity, need, what, {"api": api.name})

    def _caller(self, request: Request) -> tuple[str, PluginSlot]:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        slot = self.supervisor.identity(token) if token else None
        if slot is None:
            raise PowerXError(
                ErrorCode.UNAUTHENTICATED,
                "Host API calls need the plugin's own token.",
                "call through the powerx_plugin helper (Python) or env.host (Node); "
                "they send POWERX_PLUGIN_TOKEN for you.",
                status=401,
            )
        return token, slot

    def _authorize(self, slot: PluginSlot, api: HostApi) -> None:
        manifest = slot.manifest
        if api.scope in self.policy.deny:
            self._deny(slot, api, reason="denied by the simulator's permission policy")
            raise PowerXError(
                ErrorCode.PERMISSION_DENIED,
                f"The permission policy denies scope '{api.scope}' (needed by {api.name}).",
                "remove it from permission_policy.deny in host_simulator.yaml if that is intended.",
                status=403,
                details={"scope": api.scope, "api": api.name, "plugin": manifest.id},
            )
        if api.scope in manifest.permissions:
            return
        self._deny(slot, api, reason="scope not declared in the manifest")
        if self.policy.mode == "warn":
            return
        raise PowerXError(
            ErrorCode.PERMISSION_DENIED,
            f"Plugin {manifest.id} lacks scope '{api.scope}' needed by {api.name}.",
            f"add '{api.scope}' to permissions in plugin.yaml.",
            status=403,
            details={"scope": api.scope, "api": api.name, "plugin": manifest.id},
        )

    def _deny(
        self, slot: PluginSlot, api: HostApi, scope: str | None = None, reason: str = ""
    ) -> None:
        if self.on_denied is not None:
            enforced = scope is not None  # a tenant refusal: whatever the policy's mode
            denial = Denial(slot.manifest.id, api.name, scope or api.scope, reason, enforced)
            self.on_denied(denial)

    async def handle(self, request: Request) -> Response:
        path = "/" + request.path_params.get("path", "")
        token, slot = self._caller(request)
        if self.inspector is None:
            return await self._handle(request, path, token, slot)
        started = time.perf_counter()
        status, error = 500, None
        try:
            response = await self._handle(request, path, token, slot)
            status = response.status_code
            return response
        except PowerXError as refused:
            status, error = refused.status, refused.code
            raise
        finally:
            self._inspect(request, path, token, slot, started, status, error)

    def _inspect(
        self,
        request: Request,
        path: str,
        token: str,
        slot: PluginSlot,
        started: float,
        status: int,
        error: str | None,
    ) -> None:
        """Keep the call with the request the plugin made it for (observe/requests.py)."""
        assert self.inspector is not None
        entry = self.supervisor.tokens.get(token)
        if entry is None:
            return
        api_name = next((a.name for a, p in self._routes if p.match(path)), path)
        tenant = request.headers.get(TENANT_HEADER) or self.default_tenant
        grant = request.headers.get(GRANT_HEADER, "")
        identity = self._granted_identity(token, tenant, grant) if grant else None
        call = HostCall(
            time.time(),
            api_name,
            request.method,
            "/host/api" + path,
            status,
            (time.perf_counter() - started) * 1000,
            error,
        )
        self.inspector.host_call(
            slot.manifest.id,
            entry[1],
            request.headers.get(REQUEST_ID_HEADER),
            tenant,
            identity if identity is not None else self.default_identity,
            call,
        )

    async def _handle(self, request: Request, path: str, token: str, slot: PluginSlot) -> Response:
        api, params = self._match(request.method, path)
        self._authorize(slot, api)
        tenant, identity = self._context(request, token, slot, api)
        self._authorize_identity(slot, api, identity)
        body: Any = None
        if request.method in {"POST", "PUT"}:
            try:
                body = await read_json(request)
            except ValueError:
                raise PowerXError(
                    ErrorCode.INVALID_BODY,
                    f"{api.name} needs a JSON body.",
                    "send JSON with content-type application/json.",
                ) from None
        status, payload = self._dispatch(api, params, tenant, slot.manifest.id, body, request)
        if status == 204:
            return Response(status_code=204)
        return JSONResponse(payload, status_code=status)

    def _dispatch(
        self,
        api: HostApi,
        params: dict[str, str],
        tenant: str,
        plugin: str,
        body: Any,
        request: Request,
    ) -> tuple[int, Any]:
        data = self.data
        if api.name == "contacts.list":
            return 200, data.contacts(tenant)
        if api.name == "contacts.search":
            return 200, data.search_contacts(tenant, request.query_params.get("q", ""))
        if api.name == "contacts.get":
            contact = data.contact(tenant, params["contact_id"])
            if contact is None:
                raise PowerXError(
                    ErrorCode.NOT_FOUND,
                    f"No contact {params['contact_id']} in tenant {tenant}.",
                    "list contacts first to get valid ids.",
                    status=404,
                )
            return 200, contact
        if api.name == "messages.list":
            return 200, data.messages(tenant)
        if api.name == "messages.send":
            if (
                not isinstance(body, dict)
                or not isinstance(body.get("to"), str)
                or not isinstance(body.get("text"), str)
            ):
                raise PowerXError(
                    ErrorCode.INVALID_BODY,
                    'messages.send needs {"to": str, "text": str}.',
                    "send both fields as strings.",
                )
            return 201, data.send_message(tenant, body["to"], body["text"])
        if api.name == "tenant.get":
            return 200, data.info(tenant)
        store = data.kv(tenant, plugin)
        key = params["key"]
        if api.name == "kv.get":
            if key not in store:
                raise PowerXError(
                    ErrorCode.NOT_FOUND,
                    f"No key '{key}' in the kv store.",
                    "put the key first.",
                    status=404,
                )
            return 200, {"key": key, "value": store[key]}
        if api.name == "kv.put":
            if not isinstance(body, dict) or "value" not in body:
                raise PowerXError(
                    ErrorCode.INVALID_BODY, 'kv.put needs {"value": ...}.', "send a JSON body."
                )
            store[key] = body["value"]
            return 200, {"key": key, "value": body["value"]}
        if api.name == "kv.delete":
            store.pop(key, None)
            return 204, None
        raise PowerXError(
            ErrorCode.API_NOT_AVAILABLE, f"{api.name} is not emulated.", None, status=501
        )
