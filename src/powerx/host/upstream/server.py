"""The host's own gRPC services for plugins: STS and IAM (PowerX's contracts, with server
reflection), on a unix socket in a private folder that only plugins are given.

Plugins get its address and their credentials in the environment names PowerXPluginBase
reads (``plugin_environment``); in a sandbox the socket is bound into the plugin's mount
view (host/sandbox.py), and nothing else is reachable there. Every call needs a
credential: Exchange its client secret, Introspect the token it asks about, reflection and
IAM a bearer token (the developer's own credential also opens reflection, for grpcurl).
Every call is logged (masked) and counted, denials also audited, like host API calls.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from powerx.auth import check_bearer
from powerx.config import PermissionPolicy
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.gateway import Denial
from powerx.host.supervisor import Supervisor
from powerx.host.tenants import TenantData
from powerx.host.upstream.callers import Caller, Callers, bearer
from powerx.host.upstream.calls import (
    CallRecord,
    Context,
    abort,
    elapsed_ms,
    metadata_of,
    status_of,
)
from powerx.host.upstream.contracts import SERVED_SERVICES, Contracts, contracts
from powerx.host.upstream.iam import Iam
from powerx.host.upstream.reflection import guarded_reflection
from powerx.host.upstream.sts import EXCHANGE, INTROSPECT, ScopeRefusal, Sts
from powerx.host.upstream.tenancy import TenantDirectory
from powerx.host.upstream.tokens import (
    ACCESS_SCOPE,
    AUDIENCE,
    DEFAULT_TTL_S,
    ClientId,
    TokenService,
)
from powerx.images import HostImage

__all__ = ["UpstreamServer"]


class UpstreamServer:
    def __init__(
        self,
        image: HostImage,
        policy: PermissionPolicy,
        supervisor: Supervisor,
        tenants: TenantDirectory,
        data: TenantData,
        on_call: Callable[[CallRecord], None],
        on_denied: Callable[[Denial], None],
    ) -> None:
        self.image = image
        self.policy = policy
        self.supervisor = supervisor
        self.tenants = tenants
        self.data = data
        self.on_call = on_call
        self.on_denied = on_denied
        self.tokens = TokenService()
        self.callers = Callers(self.tokens, tenants, self.granted, self._plugin_of_token)
        self.socket: Path | None = None
        self._server: grpc.aio.Server | None = None

    # -- life -----------------------------------------------------------------------------

    @property
    def address(self) -> str | None:
        """Where plugins dial (``unix:///...``: gRPC's Go, C and Node clients read it)."""
        return f"unix://{self.socket}" if self.socket is not None else None

    async def start(self) -> None:
        from grpc_reflection.v1alpha import reflection_pb2_grpc

        compiled = contracts()
        served = self._served(compiled)
        server = grpc.aio.server()
        server.add_generic_rpc_handlers(tuple(self._handlers(compiled, served)))
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            guarded_reflection(served, compiled.pool, self.check_reflection, self.on_call),
            server,
        )
        folder = Path(tempfile.mkdtemp(prefix="pxg-"))  # 0700: no other user gets in
        socket = folder / "grpc.sock"
        try:
            server.add_insecure_port(f"unix:{socket}")
            await server.start()
        except RuntimeError as error:  # e.g. a TMPDIR too long for a socket path
            shutil.rmtree(folder, ignore_errors=True)
            raise PowerXError(
                ErrorCode.GRPC_LISTEN_FAILED,
                f"The host's gRPC services could not listen on {socket}: {error}.",
                "set TMPDIR to a short folder you can write to (a unix socket's path "
                "must stay under ~100 characters), then start again.",
                status=500,
            ) from None
        self._server, self.socket = server, socket

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=1.0)
            self._server = None
        if self.socket is not None:
            shutil.rmtree(self.socket.parent, ignore_errors=True)

    def plugin_environment(self, plugin_id: str, token: str) -> dict[str, str]:
        """Where and as whom a plugin calls, under the names PowerXPluginBase reads."""
        if self.address is None:
            return {}
        tenant = self.tenants.home
        client = ClientId(plugin_id, tenant.id)
        return {
            "PX_GRPC_UPSTREAM_ADDRESS": self.address,
            "PX_GRPC_UPSTREAM_TOKEN": token,
            "PX_GRPC_UPSTREAM_TENANT_ID": str(tenant.id),
            "PX_STS_CLIENT_ID": str(client),
            "PX_STS_CLIENT_SECRET": self.tokens.client_secret(client),
            "PX_STS_AUDIENCE": AUDIENCE,
            "PX_STS_SCOPE": ACCESS_SCOPE,
            "PX_STS_TTL": f"{DEFAULT_TTL_S}s",  # a Go duration, as its config parses it
        }

    def status(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "tenant_id": self.tenants.home.id,
            "services": self._served(contracts()) if self.socket is not None else [],
        }

    # -- who may do what ---------------------------------------------------------------------

    def granted(self, plugin: str) -> tuple[str, ...] | None:
        """The host scopes a running plugin holds: its manifest's, those the image offers,
        less the permission policy's deny list. None when no generation of it runs."""
        slot = self.supervisor.slots.get(plugin)
        if slot is None or not any(g.plugin_id == plugin for g in self.supervisor.live):
            return None
        offered = self.image.scopes
        return tuple(
            s for s in slot.manifest.permissions if s in offered and s not in self.policy.deny
        )

    def _plugin_of_token(self, token: str) -> str | None:
        slot = self.supervisor.identity(token)
        return slot.manifest.id if slot is not None else None

    def _served(self, compiled: Contracts) -> list[str]:
        """The services the image offers a method of (2.2's has no IAM)."""
        return [
            service
            for service in SERVED_SERVICES
            if any(self.image.rpc(f"/{service}/{m.name}") for m in compiled.methods(service))
        ]

    def _deny(self, caller: Caller, method: str, scope: str, reason: str, enforced: bool) -> None:
        self.on_denied(Denial(caller.plugin, method, scope, reason, enforced))

    def _authorize(self, caller: Caller, method: str) -> None:
        rpc = self.image.rpc(method)
        if rpc is None:
            raise PowerXError(
                ErrorCode.API_NOT_AVAILABLE,
                f"Host API {self.image.api_version} ({self.image.name}) has no {method}.",
                "run an image that has it (--image or 'image:' in host_simulator.yaml).",
                status=501,
            )
        scope = rpc.scope
        if not scope or scope in caller.scopes:
            return
        declared = scope in (self.granted(caller.plugin) or ())
        if scope in self.policy.deny:
            reason, enforced = "denied by the simulator's permission policy", True
        elif not declared:
            reason, enforced = "scope not declared in the manifest", self.policy.mode != "warn"
        else:
            reason, enforced = "scope not in the token (exchanged for other scopes)", True
        self._deny(caller, method, scope, reason, enforced)
        if not enforced:
            return
        raise PowerXError(
            ErrorCode.PERMISSION_DENIED,
            f"Plugin {caller.plugin} may not call {method}: {reason} ('{scope}').",
            f"add '{scope}' to permissions in plugin.yaml, then exchange a new token."
            if not declared
            else "exchange a token with scope 'access' (everything the plugin is granted).",
            status=403,
            details={"plugin": caller.plugin, "scope": scope},
        )

    def _check_tenant(
        self, caller: Caller, method: str, metadata: dict[str, str], request: Any
    ) -> None:
        for named in self.callers.named_tenants(metadata, request):
            if named == caller.tenant.id:
                continue
            reason = f"tenant {named} named; the credential is for tenant {caller.tenant.id}"
            self._deny(caller, method, "tenant", reason, True)
            raise PowerXError(
                ErrorCode.TENANT_NOT_GRANTED,
                f"Plugin {caller.plugin} called {method} for tenant {named}, but its credential "
                f"is for tenant {caller.tenant.id}.",
                "call with the tenant of PX_GRPC_UPSTREAM_TENANT_ID (x-powerx-tenant-id and "
                "ctx.tenant_id); each tenant has its own client credentials.",
                status=403,
                details={"plugin": caller.plugin, "tenant_id": named},
            )

    def on_refused_scopes(self, refusal: ScopeRefusal) -> None:
        for scope in refusal.scopes:
            reason = "scope asked of the STS but not granted"
            self.on_denied(Denial(refusal.plugin, EXCHANGE, scope, reason, refusal.enforced))

    # -- calls ------------------------------------------------------------------------------

    def _handlers(self, compiled: Contracts, served: list[str]) -> list[grpc.GenericRpcHandler]:
        iam = Iam(compiled, self.data).handlers()
        sts = Sts(
            compiled,
            self.tokens,
            self.tenants,
            self.granted,
            lambda: self.policy.mode == "warn",
            self.on_refused_scopes,
        )
        handlers = []
        for service in served:
            methods = {}
            for method in compiled.methods(service):
                full = f"/{service}/{method.name}"
                if full in {EXCHANGE, INTROSPECT}:
                    serve = _sts_call(sts.exchange if full == EXCHANGE else sts.introspect)
                else:
                    serve = _iam_call(iam[full])
                methods[method.name] = grpc.unary_unary_rpc_method_handler(
                    self._behaviour(full, serve, sts),
                    request_deserializer=compiled.message(method.input_type.full_name).FromString,
                    response_serializer=compiled.message(
                        method.output_type.full_name
                    ).SerializeToString,
                )
            handlers.append(grpc.method_handlers_generic_handler(service, methods))
        return handlers

    def _behaviour(self, method: str, serve: Serve, sts: Sts) -> Callable[[Any, Context], Any]:
        credentialed = method in {EXCHANGE, INTROSPECT}  # by the request itself

        async def behaviour(request: Any, context: Context) -> Message:
            started = time.perf_counter()
            plugin: str | None = None
            tenant_id: int | None = None
            failed: PowerXError | None = None
            try:
                if method == EXCHANGE:  # the plugin it names, if that one runs here
                    client = sts.client_of(request)
                    if client is not None and client.plugin in self.supervisor.slots:
                        plugin, tenant_id = client.plugin, client.tenant_id
                caller = None
                if not credentialed:
                    metadata = metadata_of(context)
                    caller = self.callers.identify(metadata)
                    plugin, tenant_id = caller.plugin, caller.tenant.id
                    self._authorize(caller, method)
                    self._check_tenant(caller, method, metadata, request)
                return serve(caller, request)
            except PowerXError as error:
                failed = error
            except Exception as error:  # a bug of ours: the plugin gets INTERNAL, not a hang
                failed = PowerXError(
                    ErrorCode.INTERNAL_ERROR,
                    f"The simulator failed to answer {method}: {error!r}.",
                    "report it with the simulator's output.",
                    status=500,
                )
            finally:
                self.on_call(
                    CallRecord(
                        plugin,
                        method,
                        status_of(failed).name,
                        elapsed_ms(started),
                        tenant_id,
                        failed,
                        MessageToDict(request, preserving_proto_field_name=True),
                    )
                )
            assert failed is not None  # the try returned otherwise
            await abort(context, failed)

        return behaviour

    def check_reflection(self, metadata: dict[str, str]) -> str | None:
        """Who may list the services: a plugin (either token) or the developer (their
        credential); returns the plugin, if one. 401 for anyone else."""
        token = bearer(metadata)
        if token:
            with contextlib.suppress(PowerXError):
                return self.callers.identify(metadata).plugin
            with contextlib.suppress(PowerXError):
                check_bearer(metadata.get("authorization"))
                return None
        raise PowerXError(
            ErrorCode.UNAUTHENTICATED,
            "Reflection on the host's gRPC services needs a bearer token.",
            "send a plugin's token (PX_GRPC_UPSTREAM_TOKEN or one from the STS), or your "
            "developer credential (`powerx login`), as 'authorization: Bearer <token>'.",
            status=401,
        )


Serve = Callable[[Caller | None, Any], Message]


def _sts_call(handler: Callable[[Any], Message]) -> Serve:
    """An STS method: the request carries its own credential."""
    return lambda _caller, request: handler(request)


def _iam_call(handler: Callable[[Any, Any], Message]) -> Serve:
    """An IAM method: for the identified caller's tenant."""

    def serve(caller: Caller | None, request: Any) -> Message:
        assert caller is not None
        return handler(caller.tenant, request)

    return serve
