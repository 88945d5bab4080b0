"""The signed tenant context: who a request to a plugin is made as, in the forms PowerX's
plugin middleware (PowerXPluginBase ``backend/internal/middleware/jwt.go``) accepts.

- ``Authorization: Bearer <JWT>``: HS256, claims ``tid`` and ``uid`` (integers),
  ``roles``, ``perms`` (lists of strings), ``policy_version`` (a string), ``iss``, ``aud``,
  ``iat``, ``exp``. The audience is ``plugin:<plugin id>`` as PowerX's router mints it,
  plus ``powerx:api``, which PowerXPluginBase accepts when it runs outside the host.
- ``X-PowerX-CTX``: standard base64 (padded) of the JSON ``{tid, uid, roles, perms,
  policy_version, ts}``; ``X-PowerX-CTX-SIG``: lowercase hex of HMAC-SHA256 keyed by the
  secret over the base64 *text* (not the decoded JSON). The middleware refuses one older
  than its max age (300 s).

One secret, made per run, signs both; the plugin gets it in every environment name its
middleware reads (``plugin_environment``). The identity is the developer's choice: the
config's default, ``powerx host start --as NAME``, or per request ``X-PowerX-Identity``
sent with the developer credential. A plugin never picks one: headers of these names
arriving from a caller are dropped before the simulator adds its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

import jwt
from starlette.requests import Request

from powerx.auth import check_bearer
from powerx.config import ContextSigning, Identity
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError

IDENTITY_HEADER = "x-powerx-identity"
CTX_HEADER = "x-powerx-ctx"
CTX_SIG_HEADER = "x-powerx-ctx-sig"
# What a caller may not hand a plugin itself: the simulator signs these.
SIGNED_HEADERS = frozenset({"authorization", CTX_HEADER, CTX_SIG_HEADER, IDENTITY_HEADER})
# PowerXPluginBase also accepts these audiences when not behind the host (POWERX_PROXY unset).
LOCAL_AUDIENCE = "powerx:api"


def plugin_audience(plugin_id: str) -> str:
    return f"plugin:{plugin_id}"


class ContextSigner:
    """Signs identities for plugins with one secret per simulator run."""

    def __init__(
        self,
        identities: dict[str, Identity],
        default: str,
        signing: ContextSigning,
        secret: str | None = None,
    ) -> None:
        self.identities = identities
        self.default = default
        self.signing = signing
        self.secret = secret or secrets.token_hex(32)

    def choose(self, request: Request) -> tuple[str, Identity]:
        """The identity a request is made as: the run's default, or the one the developer
        names in ``X-PowerX-Identity`` (which needs the developer credential)."""
        named = request.headers.get(IDENTITY_HEADER)
        if not named:
            return self.default, self.identities[self.default]
        check_bearer(request.headers.get("authorization"))
        identity = self.identities.get(named)
        if identity is None:
            raise PowerXError(
                ErrorCode.IDENTITY_UNKNOWN,
                f"No identity '{named[:100]}' in the simulator's config.",
                f"use one of: {', '.join(sorted(self.identities))}, or add it under "
                "identities in host_simulator.yaml.",
                status=400,
            )
        return named, identity

    def jwt(self, identity: Identity, plugin_id: str, now: int | None = None) -> str:
        issued = int(time.time()) if now is None else now
        claims = {
            "tid": identity.tenant_id,
            "uid": identity.user_id,
            "roles": list(identity.roles),
            "perms": list(identity.perms),
            "policy_version": identity.policy_version,
            "iss": self.signing.issuer,
            "aud": [plugin_audience(plugin_id), LOCAL_AUDIENCE],
            "iat": issued,
            "exp": issued + self.signing.ttl_s,
        }
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def signed_context(self, identity: Identity, now: int | None = None) -> tuple[str, str]:
        """``(X-PowerX-CTX, X-PowerX-CTX-SIG)``. Written by hand: the format is PowerX's
        own (HMAC over the base64 text, hex), which no JWT or signing library produces."""
        body = {
            "tid": identity.tenant_id,
            "uid": identity.user_id,
            "roles": list(identity.roles),
            "perms": list(identity.perms),
            "policy_version": identity.policy_version,
            "ts": int(time.time()) if now is None else now,
        }
        encoded = base64.b64encode(json.dumps(body, separators=(",", ":")).encode()).decode()
        signature = hmac.new(self.secret.encode(), encoded.encode(), hashlib.sha256).hexdigest()
        return encoded, signature

    def headers(self, identity: Identity, plugin_id: str) -> list[tuple[str, str]]:
        now = int(time.time())
        context, signature = self.signed_context(identity, now)
        return [
            ("authorization", f"Bearer {self.jwt(identity, plugin_id, now)}"),
            (CTX_HEADER, context),
            (CTX_SIG_HEADER, signature),
        ]

    def plugin_environment(self, plugin_id: str) -> dict[str, str]:
        """The signing settings under every name PowerXPluginBase reads: its config's
        ``PLUGIN_CTX_*``/``PX_CTX_*`` (older) and ``POWERX_CTX_*`` (newer), and the
        ``POWERX_SECURITY_*`` its router uses behind the host (``POWERX_PROXY=1``)."""
        audience = plugin_audience(plugin_id)
        ttl = f"{self.signing.ttl_s}s"  # a Go duration: the middleware parses it so
        issuer = self.signing.issuer
        return {
            "PLUGIN_CTX_HMAC_SECRET": self.secret,
            "PLUGIN_CTX_KID": "powerx-simulator",
            "PX_CTX_ISSUER": issuer,
            "PX_CTX_AUDIENCE": audience,
            "PX_CTX_TTL": ttl,
            "POWERX_CTX_ISSUER": issuer,
            "POWERX_CTX_AUDIENCE": audience,
            "POWERX_CTX_TTL": ttl,
            "POWERX_PROXY": "1",
            "POWERX_SECURITY_JWT_SECRET": self.secret,
            "POWERX_SECURITY_JWT_ISSUER": issuer,
            "POWERX_SECURITY_JWT_AUDIENCE": audience,
            "POWERX_SECURITY_CTX_HMAC_SECRET": self.secret,
        }
