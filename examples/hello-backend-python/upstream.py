"""The host's gRPC services from a plugin, as PowerXPluginBase's client calls them
(backend/internal/grpc/client, docs/backend/grpc/sts_flow.md), with grpcio:

- dial PX_GRPC_UPSTREAM_ADDRESS (the simulator gives a ``unix:///...`` address);
- trade PX_STS_CLIENT_ID (``<plugin id>.<tenant id>``) and PX_STS_CLIENT_SECRET for a
  short-lived token at ``powerx.auth.sts.v1.STSService/Exchange`` (audience
  PX_STS_AUDIENCE, scope PX_STS_SCOPE, TTL PX_STS_TTL, default 300 s), keep it in memory
  and exchange again when less than 60 s are left;
- send it as ``authorization: Bearer`` with the tenant as ``x-powerx-tenant-id``; on
  UNAUTHENTICATED or PERMISSION_DENIED drop it, exchange again and retry once;
- learn the services' message types from the host by server reflection (no generated
  code in the plugin), as PowerXPluginBase's ``InvokeGRPC`` does.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

EXCHANGE = "/powerx.auth.sts.v1.STSService/Exchange"
REFRESH_MARGIN_S = 60.0  # PowerXPluginBase refreshes a token with less than this left
RETRY_ON = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


def go_duration_s(text: str, default: float = 300.0) -> float:
    """PX_STS_TTL as PowerXPluginBase parses it (a Go duration: ``300s``, ``5m``)."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", text.strip())
    return sum(float(n) * units[u] for n, u in parts) if parts else default


class StsTokens:
    """A token in memory, exchanged again when less than ``margin_s`` of it is left."""

    def __init__(
        self,
        exchange: Callable[[], tuple[str, float]],
        margin_s: float = REFRESH_MARGIN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._exchange = exchange  # -> (token, seconds it lasts)
        self._margin_s = margin_s
        self._clock = clock
        self._lock = threading.Lock()
        self._token = ""
        self._expires = 0.0
        self.exchanges = 0

    def get(self) -> str:
        with self._lock:
            if not self._token or self._clock() >= self._expires - self._margin_s:
                token, lasts_s = self._exchange()
                self._token, self._expires = token, self._clock() + lasts_s
                self.exchanges += 1
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token, self._expires = "", 0.0


class _Metadata(grpc.UnaryUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds metadata (the bearer, the tenant) to every call on a channel."""

    def __init__(self, metadata: Callable[[], list[tuple[str, str]]]) -> None:
        self._metadata = metadata

    def _details(self, details: Any) -> Any:
        extra = [*(details.metadata or ()), *self._metadata()]
        return details._replace(metadata=extra)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


class UpstreamError(Exception):
    def __init__(self, error: grpc.RpcError) -> None:
        self.code: grpc.StatusCode = error.code()
        self.details: str = error.details() or ""
        super().__init__(f"{self.code.name}: {self.details}")


class Upstream:
    """The host's services, for the tenant PX_GRPC_UPSTREAM_TENANT_ID."""

    def __init__(self, env: Mapping[str, str] = os.environ, margin_s: float = REFRESH_MARGIN_S):
        self.address = env["PX_GRPC_UPSTREAM_ADDRESS"]
        self.tenant_id = int(env.get("PX_GRPC_UPSTREAM_TENANT_ID", "0"))
        self.client_id = env.get("PX_STS_CLIENT_ID", "")
        self.client_secret = env.get("PX_STS_CLIENT_SECRET", "")
        self.audience = env.get("PX_STS_AUDIENCE", "powerx:api")
        self.scope = env.get("PX_STS_SCOPE", "access")
        self.ttl_s = go_duration_s(env.get("PX_STS_TTL", "300s"))
        self.static_token = env.get("PX_GRPC_UPSTREAM_TOKEN", "")
        self.channel = grpc.insecure_channel(self.address)
        # Reflection carries the plugin's static token (the STS's own types are needed
        # before there is an STS token) and the tenant.
        reflecting = grpc.intercept_channel(
            self.channel,
            _Metadata(
                lambda: [
                    ("authorization", f"Bearer {self.static_token}"),
                    ("x-powerx-tenant-id", str(self.tenant_id)),
                ]
            ),
        )
        self.pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(reflecting))
        self.tokens = StsTokens(self.exchange, margin_s)

    def _types(self, method: str) -> tuple[type[Any], type[Any]]:
        service, _, name = method.strip("/").rpartition("/")
        found = self.pool.FindServiceByName(service).FindMethodByName(name)
        return (
            message_factory.GetMessageClass(found.input_type),
            message_factory.GetMessageClass(found.output_type),
        )

    def _invoke(
        self, method: str, fields: Mapping[str, Any], metadata: list[tuple[str, str]]
    ) -> dict[str, Any]:
        request_type, response_type = self._types(method)
        request = json_format.ParseDict(dict(fields), request_type())
        call = self.channel.unary_unary(
            method,
            request_serializer=request_type.SerializeToString,
            response_deserializer=response_type.FromString,
        )
        try:
            response = call(request, metadata=metadata, timeout=10)
        except grpc.RpcError as error:
            raise UpstreamError(error) from None
        return json_format.MessageToDict(response, preserving_proto_field_name=True)

    def exchange(self) -> tuple[str, float]:
        """One Exchange now: the token and how many seconds it lasts."""
        # As PowerXPluginBase: no authorization on the STS, the tenant in ctx.
        answer = self._invoke(
            EXCHANGE,
            {
                "ctx": {"tenant_id": str(self.tenant_id)},
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "audience": self.audience,
                "scope": self.scope,
                "ttl_seconds": int(self.ttl_s),
            },
            [],
        )
        data = answer.get("data", {})
        return str(data["access_token"]), float(data.get("expires_in", self.ttl_s))

    def call(
        self, method: str, fields: Mapping[str, Any], tenant_id: int | None = None
    ) -> dict[str, Any]:
        """One call for ``tenant_id`` (the plugin's own by default), exchanging the token
        again and retrying once when the host refuses it."""
        tenant = str(tenant_id or self.tenant_id)
        for attempt in (1, 2):
            metadata = [
                ("authorization", f"Bearer {self.tokens.get()}"),
                ("x-powerx-tenant-id", tenant),
            ]
            try:
                return self._invoke(method, fields, metadata)
            except UpstreamError as error:
                if attempt == 2 or error.code not in RETRY_ON:
                    raise
                self.tokens.invalidate()
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.channel.close()
