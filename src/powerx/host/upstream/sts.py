"""``powerx.auth.sts.v1.STSService``: client credentials in, a short-lived token out.

Exchange checks the secret against the ``client_id`` (``<plugin id>.<tenant id>``; a wrong
one is UNAUTHENTICATED), and issues a token for that plugin and tenant with the requested
audience (``powerx:api`` by default) and TTL (300 s by default, 3600 s at most). Its scopes
are what the plugin is granted (its manifest's host scopes less the permission policy's
deny list): all of them for ``access`` (PowerXPluginBase's default) or an empty scope, else
the ones asked for; asking for one it is not granted is PERMISSION_DENIED. Introspect
says whether a token is active, and what it carries.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.upstream.contracts import STS_SERVICE, Contracts
from powerx.host.upstream.tenancy import TenantDirectory
from powerx.host.upstream.tokens import ACCESS_SCOPE, AUDIENCE, ISSUER, ClientId, TokenService

EXCHANGE = f"/{STS_SERVICE}/Exchange"
INTROSPECT = f"/{STS_SERVICE}/Introspect"

__all__ = ["EXCHANGE", "INTROSPECT", "ScopeRefusal", "Sts"]


@dataclass(frozen=True)
class ScopeRefusal:
    """Scopes an Exchange asked for that the plugin is not granted."""

    plugin: str
    scopes: tuple[str, ...]
    enforced: bool  # refused (enforce mode), or only left out of the token (warn mode)


class Sts:
    def __init__(
        self,
        contracts: Contracts,
        tokens: TokenService,
        tenants: TenantDirectory,
        granted: Callable[[str], tuple[str, ...] | None],
        warn_only: Callable[[], bool],
        on_refused_scopes: Callable[[ScopeRefusal], None],
    ) -> None:
        self.contracts = contracts
        self.tokens = tokens
        self.tenants = tenants
        self.granted = granted
        self.warn_only = warn_only  # the permission policy's mode is "warn"
        self.on_refused_scopes = on_refused_scopes

    def _meta(self, request_id: str) -> Message:
        return self.contracts.new(
            "common.v1.ResponseMeta",
            code=200,
            message="success",
            timestamp=int(time.time()),
            request_id=request_id or uuid.uuid4().hex,
        )

    def client_of(self, request: Any) -> ClientId | None:
        """The client an Exchange names, if it names one well (for the log line)."""
        try:
            return ClientId.parse(request.client_id)
        except PowerXError:
            return None

    def exchange(self, request: Any) -> Message:
        if not request.client_id or not request.client_secret:
            if request.subject_token:
                raise PowerXError(
                    ErrorCode.NOT_SUPPORTED,
                    "The simulator's STS exchanges client credentials, not subject tokens.",
                    "send client_id and client_secret (PX_STS_CLIENT_ID, PX_STS_CLIENT_SECRET).",
                    status=501,
                )
            raise PowerXError(
                ErrorCode.INVALID_ARGUMENT,
                "Exchange needs client_id and client_secret.",
                "send PX_STS_CLIENT_ID and PX_STS_CLIENT_SECRET from the plugin's environment.",
                status=400,
            )
        client = self.tokens.check_client(request.client_id, request.client_secret)
        tenant = self.tenants.get(client.tenant_id)
        granted = self.granted(client.plugin)
        if tenant is None or granted is None:
            raise PowerXError(
                ErrorCode.INVALID_CLIENT,
                f"client_id {client} names no running plugin and tenant of this simulator.",
                "send the PX_STS_CLIENT_ID the simulator gave the plugin.",
                status=401,
            )
        scopes = self._scopes(client.plugin, request.scope, granted)
        access = self.tokens.issue(
            client, tenant.uuid, scopes, request.audience or AUDIENCE, request.ttl_seconds
        )
        response: Any = self.contracts.new("powerx.auth.sts.v1.ExchangeResponse")
        response.meta.CopyFrom(self._meta(request.ctx.request_id))
        data = response.data
        data.access_token, data.token_type = access.token, "Bearer"
        data.expires_in = access.expires_at - access.issued_at
        data.audience, data.scope = access.audience, " ".join(access.scopes)
        data.issuer, data.subject, data.issued_at = ISSUER, access.subject, access.issued_at
        return response  # type: ignore[no-any-return]

    def _scopes(self, plugin: str, asked: str, granted: tuple[str, ...]) -> tuple[str, ...]:
        wanted = [s for s in asked.split() if s != ACCESS_SCOPE]
        if not wanted:
            return granted
        missing = tuple(s for s in wanted if s not in granted)
        if missing:
            enforced = not self.warn_only()
            self.on_refused_scopes(ScopeRefusal(plugin, missing, enforced))
            if enforced:
                raise PowerXError(
                    ErrorCode.PERMISSION_DENIED,
                    f"Plugin {plugin} is not granted scope(s) {', '.join(missing)}.",
                    "add them to permissions in plugin.yaml (if the image offers them), or "
                    "ask for 'access' to get every scope the plugin holds.",
                    status=403,
                    details={"plugin": plugin, "scopes": list(missing)},
                )
        return tuple(s for s in wanted if s in granted)

    def introspect(self, request: Any) -> Message:
        response: Any = self.contracts.new("powerx.auth.sts.v1.IntrospectResponse")
        response.meta.CopyFrom(self._meta(""))
        try:
            access = self.tokens.verify(request.access_token, audience=None)
        except PowerXError:
            response.data.active = False
            return response  # type: ignore[no-any-return]
        data = response.data
        data.active, data.audience, data.issuer = True, access.audience, ISSUER
        data.subject, data.exp = access.subject, access.expires_at
        data.scope = " ".join(access.scopes)
        return response  # type: ignore[no-any-return]
