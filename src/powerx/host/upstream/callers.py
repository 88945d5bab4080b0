"""Who is calling the host's gRPC services, and for which tenant.

A call presents ``authorization: Bearer <token>``: a token the STS issued (its plugin,
tenant and scopes are in its claims), or the plugin's per-generation token (handed to it
as ``PX_GRPC_UPSTREAM_TOKEN``: the run's tenant, the plugin's granted scopes, valid while
that generation runs). The tenant a call names, in ``x-powerx-tenant-id`` metadata or in
its ``RequestContext.tenant_id``, must be the caller's: a plugin never picks one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.upstream.tenancy import Tenant, TenantDirectory
from powerx.host.upstream.tokens import TokenService

TENANT_METADATA = "x-powerx-tenant-id"
PLUGIN_TOKEN_PREFIX = "pxp_"

__all__ = ["TENANT_METADATA", "Caller", "Callers", "bearer"]


@dataclass(frozen=True)
class Caller:
    plugin: str
    tenant: Tenant
    scopes: tuple[str, ...]
    via: str  # "sts token" | "plugin token"


def bearer(metadata: dict[str, str]) -> str:
    header = metadata.get("authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else ""


def _unauthenticated(message: str, code: str = "unauthenticated") -> PowerXError:
    return PowerXError(
        code,
        message,
        "exchange PX_STS_CLIENT_ID and PX_STS_CLIENT_SECRET for a token "
        "(powerx.auth.sts.v1.STSService/Exchange) and send 'authorization: Bearer <token>', "
        "or send PX_GRPC_UPSTREAM_TOKEN.",
        status=401,
    )


class Callers:
    def __init__(
        self,
        tokens: TokenService,
        tenants: TenantDirectory,
        granted: Callable[[str], tuple[str, ...] | None],
        plugin_of_token: Callable[[str], str | None],
    ) -> None:
        self.tokens = tokens
        self.tenants = tenants
        # The host scopes a running plugin holds (None: it does not run).
        self.granted = granted
        # The plugin a live generation's own token belongs to.
        self.plugin_of_token = plugin_of_token

    def identify(self, metadata: dict[str, str]) -> Caller:
        """The caller a call's bearer token names; 401 without a valid one."""
        token = bearer(metadata)
        if not token:
            raise _unauthenticated("The host's gRPC services need a bearer token.")
        if token.startswith(PLUGIN_TOKEN_PREFIX):
            plugin = self.plugin_of_token(token)
            if plugin is None:
                raise _unauthenticated(
                    "The plugin token is not one of a running generation.", "token_invalid"
                )
            return Caller(plugin, self.tenants.home, self.granted(plugin) or (), "plugin token")
        access = self.tokens.verify(token)
        tenant = self.tenants.get(access.tenant_id)
        granted = self.granted(access.plugin)
        if tenant is None or granted is None:
            raise _unauthenticated(
                f"The token's plugin {access.plugin} no longer runs in this simulator.",
                "token_invalid",
            )
        # Scopes the plugin has lost since (a reload dropped a permission) go with them.
        scopes = tuple(s for s in access.scopes if s in granted)
        return Caller(access.plugin, tenant, scopes, "sts token")

    def named_tenants(self, metadata: dict[str, str], request: Any) -> list[int]:
        """The tenants a call names: its metadata's and its RequestContext's."""
        named = []
        raw = metadata.get(TENANT_METADATA, "").strip()
        if raw:
            if not raw.isdigit():
                raise PowerXError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"{TENANT_METADATA} {raw[:50]!r} is not a tenant id (a number).",
                    "send PX_GRPC_UPSTREAM_TENANT_ID, or leave the metadata out.",
                    status=400,
                )
            named.append(int(raw))
        ctx = getattr(request, "ctx", None)
        if ctx is not None and ctx.tenant_id:
            named.append(int(ctx.tenant_id))
        return named
