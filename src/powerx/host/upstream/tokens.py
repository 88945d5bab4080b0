"""The STS's credentials and tokens, as PowerX's ``STSService`` makes them.

A plugin holds one client credential per tenant: ``client_id`` is ``<plugin id>.<tenant
id>`` and its secret is an HMAC of that id under a key made per simulator run (so it
needs no storage and dies with the run). ``Exchange`` trades it for an HS256 JWT with
PowerX's claims (``tid`` the tenant's UUID, ``tid_n`` its number, ``scope``, ``plugin_id``,
``iss`` ``powerx-sts``, ``sub`` ``client:<client_id>``, ``aud``, ``iat``, ``exp``; ``kid`` in
the header), signed with another per-run key. Every other call presents that token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import jwt

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError

ISSUER = "powerx-sts"
AUDIENCE = "powerx:api"  # what the host's services accept, and PowerX's default
ACCESS_SCOPE = "access"  # PowerXPluginBase's default scope: all the plugin is granted
DEFAULT_TTL_S = 300
MAX_TTL_S = 3600
KEY_ID = "powerx-simulator"
SECRET_PREFIX = "pxs_"  # masked in logs like our other credentials

__all__ = ["ACCESS_SCOPE", "AUDIENCE", "AccessToken", "ClientId", "TokenService"]


@dataclass(frozen=True)
class ClientId:
    plugin: str
    tenant_id: int

    @classmethod
    def parse(cls, text: str) -> ClientId:
        """``<plugin id>.<tenant id>``; the plugin id has dots of its own."""
        plugin, _, tenant = text.rpartition(".")
        if not plugin or not tenant.isdigit() or int(tenant) <= 0:
            raise PowerXError(
                ErrorCode.INVALID_CLIENT_ID,
                f"client_id {text[:200]!r} is not '<plugin id>.<tenant id>'.",
                "send the PX_STS_CLIENT_ID the simulator gave the plugin.",
                status=400,
            )
        return cls(plugin, int(tenant))

    def __str__(self) -> str:
        return f"{self.plugin}.{self.tenant_id}"


@dataclass(frozen=True)
class AccessToken:
    """What a token the STS issued says."""

    token: str
    plugin: str
    tenant_id: int
    tenant_uuid: str
    scopes: tuple[str, ...]
    audience: str
    subject: str
    issued_at: int
    expires_at: int


def _unauthenticated(code: str, message: str) -> PowerXError:
    return PowerXError(
        code,
        message,
        "exchange the client credentials for a new token (STSService/Exchange) and call "
        "again with 'authorization: Bearer <token>'.",
        status=401,
    )


class TokenService:
    def __init__(self) -> None:
        self._signing_key = secrets.token_bytes(32)
        self._client_key = secrets.token_bytes(32)

    def client_secret(self, client: ClientId) -> str:
        digest = hmac.new(self._client_key, str(client).encode(), hashlib.sha256).digest()
        return SECRET_PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def check_client(self, client_id: str, secret: str) -> ClientId:
        """The client, if ``secret`` is its secret; a wrong one is 401 ``invalid_client``."""
        client = ClientId.parse(client_id)
        expected = self.client_secret(client).encode()
        if not secret or not hmac.compare_digest(secret.encode(), expected):
            raise PowerXError(
                ErrorCode.INVALID_CLIENT,
                f"The client secret is not the one for client_id {client}.",
                "send the PX_STS_CLIENT_SECRET the simulator gave the plugin, with its "
                "PX_STS_CLIENT_ID: each secret is for one plugin and tenant.",
                status=401,
                details={"plugin": client.plugin, "tenant_id": client.tenant_id},
            )
        return client

    def issue(
        self,
        client: ClientId,
        tenant_uuid: str,
        scopes: tuple[str, ...],
        audience: str = AUDIENCE,
        ttl_s: int = DEFAULT_TTL_S,
        now: int | None = None,
    ) -> AccessToken:
        issued = int(time.time()) if now is None else now
        ttl = min(ttl_s, MAX_TTL_S) if ttl_s > 0 else DEFAULT_TTL_S
        subject = f"client:{client}"
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": [audience],
            "iat": issued,
            "exp": issued + ttl,
            "tid": tenant_uuid,
            "tid_n": client.tenant_id,
            "plugin_id": client.plugin,
            "scope": " ".join(scopes),
        }
        token = jwt.encode(claims, self._signing_key, "HS256", headers={"kid": KEY_ID})
        return AccessToken(
            token,
            client.plugin,
            client.tenant_id,
            tenant_uuid,
            scopes,
            audience,
            subject,
            issued,
            issued + ttl,
        )

    def verify(self, token: str, audience: str | None = AUDIENCE) -> AccessToken:
        """The token's claims if this run's STS issued it, it has not expired and (unless
        ``audience`` is None) it is for ``audience``; else 401."""
        try:
            claims = jwt.decode(
                token,
                self._signing_key,
                algorithms=["HS256"],
                audience=audience,
                issuer=ISSUER,
                options={"verify_aud": audience is not None, "require": ["exp", "iat"]},
            )
        except jwt.ExpiredSignatureError:
            raise _unauthenticated("token_expired", "The access token has expired.") from None
        except jwt.InvalidAudienceError:
            raise _unauthenticated(
                "token_audience", f"The access token is not for audience {audience}."
            ) from None
        except jwt.PyJWTError:
            raise _unauthenticated(
                "token_invalid", "The access token was not issued by this simulator's STS."
            ) from None
        try:
            aud = claims["aud"]
            return AccessToken(
                token,
                str(claims["plugin_id"]),
                int(claims["tid_n"]),
                str(claims["tid"]),
                tuple(str(claims["scope"]).split()),
                str(aud[0] if isinstance(aud, list) else aud),
                str(claims["sub"]),
                int(claims["iat"]),
                int(claims["exp"]),
            )
        except (KeyError, TypeError, ValueError, IndexError):
            raise _unauthenticated(
                "token_invalid", "The access token lacks the STS's claims."
            ) from None
