"""Requests to plugins: ``/_p/<id>/api/...`` as PowerX's router mounts a plugin, and the
older ``/plugins/<id>/...``. Each is checked (identity, RBAC), held while a reload is on
its way, signed, forwarded to the serving generation and kept by the request inspector;
the answer comes back with the simulator's headers (generation, stale, held)."""

from __future__ import annotations

import time
from typing import Any

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.forwarding import HOP_BY_HOP, SERVER_SET, forwarded_headers, rewrite_location
from powerx.host.gateway import GRANT_HEADER, TENANT_HEADER
from powerx.host.identity import IDENTITY_HEADER, SIGNED_HEADERS
from powerx.host.reload_failures import STALE_HEADER
from powerx.host.request_replay import REPLAY_HEADER
from powerx.host.simulator import Simulator
from powerx.host.stale_page import CSP, stale_page, wants_page
from powerx.observe.requests import REQUEST_ID_HEADER, RequestRecord

# On a response that waited at the reload gate: how long, in ms.
HELD_HEADER = "x-powerx-held-ms"
# Set by the simulator on the way to a plugin: a caller's own copy is dropped (a client's
# X-Request-Id gives way to the simulator's, by which the inspector knows the request).
_SIMULATOR_SET = frozenset({GRANT_HEADER, REQUEST_ID_HEADER, REPLAY_HEADER})


async def _send_to_plugin(
    client: httpx.AsyncClient,
    method: str,
    url: httpx.URL,
    headers: list[tuple[str, str]],
    body: bytes,
    timeout: Any,
) -> httpx.Response:
    """One request to a generation, sent again once when the connection it went out on
    was closed before any answer: uvicorn closes a kept-alive connection after an app's
    exception (its 500 carries no ``connection: close``), and a request that set out on it
    at that moment was never read. Browsers retry the same way on a reused connection."""
    try:
        return await client.request(method, url, headers=headers, content=body, timeout=timeout)
    except httpx.RemoteProtocolError:
        return await client.request(method, url, headers=headers, content=body, timeout=timeout)


class PluginProxy:
    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        self.client = simulator.supervisor.http  # closed by the supervisor on shutdown
        self.stale = simulator.reload_failures.last  # read on every response: one lookup
        self.inspector = simulator.observer.requests

    async def handle(self, request: Request) -> Response:
        """``/_p/<id>/api/...`` as PowerX's router mounts a plugin: it receives
        ``/api/...``; the older ``/plugins/<id>/...`` passes what follows the id. Every
        such request is kept by the request inspector, refused ones too."""
        record = self.inspector.begin(
            request.path_params["plugin_id"],
            request.method,
            request.url.path,
            request.url.query,
            request.scope["headers"],
            request.headers.get(IDENTITY_HEADER) or self.simulator.signer.default,
        )
        try:
            return await self._proxy(request, record)
        except PowerXError as error:
            self.inspector.finish(record, error.status, error=error.code)
            raise
        except Exception:
            self.inspector.finish(record, 500, error="internal_error")
            raise

    async def _proxy(self, request: Request, record: RequestRecord) -> Response:
        plugin_id = request.path_params["plugin_id"]
        rest = request.path_params.get("path", "")
        if request.url.path.startswith("/_p/"):
            prefix, path = f"/_p/{plugin_id}", f"api/{rest}" if rest else "api"
        else:
            prefix, path = f"/plugins/{plugin_id}", rest
        # Before anything is held: a request naming an identity without the developer
        # credential is refused (a plugin must not choose who it serves).
        identity_name, identity = self.simulator.signer.choose(request)
        record.identity = identity_name
        record.replay_of = request.headers.get(REPLAY_HEADER)
        slot = self.simulator.supervisor.slots.get(plugin_id)
        if slot is not None:  # a tool's endpoint: only for identities holding its permission
            self.simulator.rbac.check_request(
                slot.manifest, request.method, f"/{path}", identity_name, identity
            )
        body = await request.body()
        self.inspector.keep_body(record, body)
        started = time.perf_counter()
        held_ms = await self.simulator.gate.passage(plugin_id)
        # No await between choosing the generation and counting the request in flight:
        # a generation being retired then always finishes this request before it stops.
        generation = self.simulator.serving(plugin_id)
        generation.enter()
        try:
            # The tenant is the developer's (or the identity's, or the config's) choice; the
            # grant lets the plugin's host API calls for this request act for it, as its
            # identity (see gateway.py).
            tenant = (
                request.headers.get(TENANT_HEADER)
                or identity.tenant
                or self.simulator.config.tenant
            )
            headers = [
                (k, v)
                for k, v in request.headers.items()
                if k.lower() not in HOP_BY_HOP
                and k.lower() not in SIGNED_HEADERS
                and k.lower() not in _SIMULATOR_SET
                and not k.lower().startswith("x-forwarded-")
            ]
            if TENANT_HEADER not in request.headers:
                headers.append((TENANT_HEADER, tenant))
            grant = self.simulator.gateway.grant(generation.token, tenant, identity_name)
            headers.append((GRANT_HEADER, grant))
            headers.extend(self.simulator.signer.headers(identity, plugin_id))
            public_host = request.headers.get("host") or request.url.netloc
            headers.extend(forwarded_headers(public_host, request.url.scheme, prefix))
            headers.append((REQUEST_ID_HEADER, record.id))
            self.inspector.sending(record, generation.number, held_ms, tenant, headers)
            url = httpx.URL(f"{generation.url}/{path}")
            if request.url.query:  # an empty one would reach the plugin as a trailing "?"
                url = url.copy_with(query=request.url.query.encode())
            # A request may sit at a breakpoint for as long as the developer looks around.
            timeout = None if self.simulator.debugger.debugging(plugin_id) else self.client.timeout
            sent = time.perf_counter()
            upstream = await _send_to_plugin(
                self.client, request.method, url, headers, body, timeout
            )
            upstream_ms = (time.perf_counter() - sent) * 1000
        except httpx.HTTPError as exc:
            generation.answered()
            raise PowerXError(
                ErrorCode.PLUGIN_UNAVAILABLE,
                f"Plugin '{plugin_id}' (generation {generation.number}) did not answer: {exc!r}.",
                "see the simulator's output for the plugin's error.",
                status=502,
            ) from None
        finally:
            generation.leave()
        response_headers = {
            k: v
            for k, v in upstream.headers.items()
            if k.lower() not in HOP_BY_HOP
            and k.lower() not in SERVER_SET
            and k.lower() not in {"content-encoding", "set-cookie"}
        }
        location = upstream.headers.get("location")
        if location is not None:
            origin = f"{request.url.scheme}://{public_host}"
            private = self.simulator.supervisor.private_ports(plugin_id, generation.port)
            response_headers["location"] = rewrite_location(location, private, origin, prefix)
        response_headers["x-powerx-generation"] = str(generation.number)
        response_headers[REQUEST_ID_HEADER] = record.id
        failure = self.stale.get(plugin_id)
        if failure is not None and failure.describes(generation.digest):
            response_headers[STALE_HEADER] = failure.header_for(generation.number)
            if wants_page(request.headers.get("accept"), upstream.headers.get("content-type")):
                page = HTMLResponse(
                    stale_page(plugin_id, failure, generation.number),
                    status_code=500,
                    headers={
                        STALE_HEADER: response_headers[STALE_HEADER],
                        "x-powerx-generation": str(generation.number),
                        REQUEST_ID_HEADER: record.id,
                        "content-security-policy": CSP,
                        "cache-control": "no-store",
                    },
                    background=BackgroundTask(generation.answered),
                )
                self.inspector.finish(
                    record,
                    500,
                    response_headers=response_headers,
                    response_body=upstream.content,
                    upstream_ms=upstream_ms,
                    error=failure.code,
                )
                return page
        held = ""
        if held_ms >= 1:
            response_headers[HELD_HEADER] = f"{held_ms:.0f}"
            held = f" (held {held_ms:.0f} ms for a reload)"
        # Requests made as another identity than the run's say so in the access log.
        chosen = "" if identity_name == self.simulator.signer.default else f" as {identity_name}"
        self.simulator.observer.logs.record(
            plugin_id,
            generation.number,
            "access",
            f"{request.method} /{path} {upstream.status_code}{chosen}{held}",
            latency_ms=(time.perf_counter() - started) * 1000,
            level="info"
            if upstream.status_code < 400
            else "warning"
            if upstream.status_code < 500
            else "error",
            tenant=request.headers.get(TENANT_HEADER),
            request_id=record.id,
        )
        self.inspector.finish(
            record,
            upstream.status_code,
            response_headers=response_headers,
            response_body=upstream.content,
            upstream_ms=upstream_ms,
        )
        # Work waiting for the generation's first answer (the next warm spare, stopping
        # the previous generation, the rest of a reload) starts once this one is sent.
        response = Response(
            upstream.content,
            status_code=upstream.status_code,
            headers=response_headers,
            background=BackgroundTask(generation.answered),
        )
        # One header per cookie: joined with commas (as a mapping would) they break.
        response.raw_headers.extend(
            (b"set-cookie", value.encode("latin-1"))
            for value in upstream.headers.get_list("set-cookie")
        )
        return response
