"""The simulator's HTTP surface (Starlette): plugin routing, host API, internal debug API."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from powerx.auth import check_bearer
from powerx.config import SIMULATOR_FLAG
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError, storage_error
from powerx.host.artefacts import MAX_ARCHIVE_BYTES
from powerx.host.debug_routes import debug_routes
from powerx.host.dev_routes import dev_routes
from powerx.host.dev_sessions import DevSessions
from powerx.host.forwarding import (
    HOP_BY_HOP,
    SERVER_SET,
    forwarded_headers,
    rewrite_location,
)
from powerx.host.gateway import GRANT_HEADER, TENANT_HEADER
from powerx.host.identity import IDENTITY_HEADER, SIGNED_HEADERS
from powerx.host.json_body import read_json
from powerx.host.local_install_routes import local_install_routes
from powerx.host.mock_data_routes import mock_data_routes
from powerx.host.observe_routes import observability_routes, reader_check
from powerx.host.reload_failures import STALE_HEADER
from powerx.host.request_guard import RequestGuard
from powerx.host.request_replay import REPLAY_HEADER
from powerx.host.request_routes import request_routes
from powerx.host.simulator import Simulator
from powerx.host.stale_page import CSP, stale_page, wants_page
from powerx.host.tool_routes import tool_routes
from powerx.host.type_check_routes import type_check_routes
from powerx.observe.requests import REQUEST_ID_HEADER, RequestRecord

DIGEST_HEADER = "x-powerx-digest"
BUILD_MS_HEADER = "x-powerx-build-ms"
SOURCE_HEADER = "x-powerx-source"
PLUGIN_HEADER = "x-powerx-plugin"
# On a response that waited at the reload gate: how long, in ms.
HELD_HEADER = "x-powerx-held-ms"
# Set by the simulator on the way to a plugin: a caller's own copy is dropped (a client's
# X-Request-Id gives way to the simulator's, by which the inspector knows the request).
_SIMULATOR_SET = frozenset({GRANT_HEADER, REQUEST_ID_HEADER, REPLAY_HEADER})


def error_response(error: PowerXError) -> JSONResponse:
    return JSONResponse(error.to_dict(), status_code=error.status)


async def _on_powerx_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PowerXError)
    return error_response(exc)


async def _on_os_error(request: Request, exc: Exception) -> Response:
    """A full or read-only disk is the user's to fix: 507 with the fix, not a 500."""
    assert isinstance(exc, OSError)
    error = storage_error(exc)
    if error is None:
        raise exc
    return error_response(error)


def _strings(value: object) -> bool:
    """Whether ``value`` is a list of strings (file or folder names in a dev loop note)."""
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


async def _json_or_none(request: Request) -> Any:
    """The JSON body, or None when there is none or it is not JSON (the caller says why
    that is wrong for it)."""
    try:
        return await read_json(request)
    except ValueError:
        return None


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


def create_app(
    simulator: Simulator, on_shutdown: Callable[[], Awaitable[None]] | None = None
) -> Starlette:
    """The ASGI app; ``on_shutdown`` runs before the server exits (plugins stop there)."""
    client = simulator.supervisor.http  # closed by the supervisor on shutdown
    stale = simulator.reload_failures.last  # read on every plugin response: one lookup

    def require_debug(request: Request) -> None:
        check_bearer(request.headers.get("authorization"))

    require_reader = reader_check(simulator)

    async def status(request: Request) -> Response:
        require_reader(request)
        return JSONResponse(simulator.status())

    async def shutdown(request: Request) -> Response:
        require_debug(request)
        simulator.shutdown_requested.set()
        return JSONResponse({"ok": True, "message": "The simulator is stopping."}, status_code=202)

    async def read_archive(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_ARCHIVE_BYTES:
            raise PowerXError(
                ErrorCode.ARCHIVE_TOO_LARGE,
                f"The archive is {declared} bytes; the cap is {MAX_ARCHIVE_BYTES}.",
                "leave node_modules and build caches out of the plugin folder.",
                status=413,
            )
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_ARCHIVE_BYTES:
                raise PowerXError(
                    ErrorCode.ARCHIVE_TOO_LARGE,
                    f"The archive exceeds the cap of {MAX_ARCHIVE_BYTES} bytes.",
                    "leave node_modules and build caches out of the plugin folder.",
                    status=413,
                )
            chunks.append(chunk)
        if not size:
            raise PowerXError(
                ErrorCode.ARCHIVE_MISSING,
                "The request carries no archive.",
                "send the artefact tar as the request body.",
            )
        return b"".join(chunks)

    def require_flag() -> None:
        if not simulator.config.flag(SIMULATOR_FLAG):
            raise PowerXError(
                ErrorCode.SIMULATOR_DISABLED,
                f"The flag {SIMULATOR_FLAG} is off.",
                f"set {SIMULATOR_FLAG}=1 and restart the simulator.",
                status=403,
            )

    async def hot_reload(request: Request) -> Response:
        received = time.perf_counter()
        require_debug(request)
        require_flag()
        plugin_hint = request.headers.get(PLUGIN_HEADER)
        try:
            return await _hot_reload(request, received, plugin_hint)
        finally:
            if plugin_hint:  # refused before its manifest was read: the pending hold ends too
                simulator.gate.settle(plugin_hint)
                simulator.dev_loops.settled(plugin_hint)

    async def _hot_reload(request: Request, received: float, plugin_hint: str | None) -> Response:
        try:
            data = await read_archive(request)
        except PowerXError as error:
            await simulator.reload_rejected(error, plugin_hint, received)
            raise
        timings = {"upload_ms": (time.perf_counter() - received) * 1000}
        build_ms = request.headers.get(BUILD_MS_HEADER, "")
        try:
            timings["build_ms"] = float(build_ms) if build_ms else 0.0
        except ValueError:
            timings["build_ms"] = 0.0
        source = request.headers.get(SOURCE_HEADER)
        activation = await simulator.hot_reload(
            data,
            request.headers.get(DIGEST_HEADER),
            Path(source) if source else None,
            timings,
            received,
            plugin_hint,
        )
        return JSONResponse(activation.to_dict())

    async def reload_pending(request: Request) -> Response:
        """The dev loop saw a save and builds: hold the plugin's requests until its upload
        has been handled (or ``{"pending": false}``: the build failed)."""
        require_debug(request)
        require_flag()
        body = await _json_or_none(request)
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("plugin"), str)
            or not isinstance(body.get("pending", True), bool)
            or not _strings(body.get("changed", []))
        ):
            raise PowerXError(
                ErrorCode.INVALID_BODY,
                'A pending reload needs {"plugin": id, "pending"?: bool, "changed"?: [path]}.',
                "send the plugin id as JSON.",
            )
        plugin, pending = body["plugin"], body.get("pending", True)
        simulator.note_pending(plugin, pending, body.get("changed", []))
        return JSONResponse({"plugin": plugin, "pending": pending})

    async def watch_armed(request: Request) -> Response:
        """The dev loop's watcher for a plugin is armed (or stopped): shown in status and
        as an event, so a test or tool can wait for it."""
        require_debug(request)
        require_flag()
        body = await _json_or_none(request)
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("plugin"), str)
            or not isinstance(body.get("armed"), bool)
            or not _strings(body.get("folders", []))
            or not isinstance(body.get("mode", ""), str)
        ):
            raise PowerXError(
                ErrorCode.INVALID_BODY,
                'A watch note needs {"plugin": id, "armed": bool, "folders"?: [name], '
                '"mode"?: str}.',
                "send the plugin id and whether its watcher is armed as JSON.",
            )
        simulator.note_watch(
            body["plugin"], body["armed"], body.get("folders", []), body.get("mode", "")
        )
        return JSONResponse({"plugin": body["plugin"], "armed": body["armed"]})

    async def rollback(request: Request) -> Response:
        require_debug(request)
        body = await _json_or_none(request)
        if not isinstance(body, dict) or not isinstance(body.get("plugin"), str):
            raise PowerXError(
                ErrorCode.INVALID_BODY,
                'Rollback needs {"plugin": id, "digest"?: str}.',
                "send the plugin id as JSON.",
            )
        started = time.perf_counter()
        digest = body.get("digest")
        activation = await simulator.rollback(
            body["plugin"], digest if isinstance(digest, str) else None
        )
        activation.finish(started)
        return JSONResponse(activation.to_dict())

    async def cache_clear(request: Request) -> Response:
        require_debug(request)
        return JSONResponse(await simulator.clear_cache())

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True, "image": simulator.image.name})

    async def host_api(request: Request) -> Response:
        return await simulator.gateway.handle(request)

    inspector = simulator.observer.requests

    async def plugin_proxy(request: Request) -> Response:
        """``/_p/<id>/api/...`` as PowerX's router mounts a plugin: it receives
        ``/api/...``; the older ``/plugins/<id>/...`` passes what follows the id. Every
        such request is kept by the request inspector, refused ones too."""
        record = inspector.begin(
            request.path_params["plugin_id"],
            request.method,
            request.url.path,
            request.url.query,
            request.scope["headers"],
            request.headers.get(IDENTITY_HEADER) or simulator.signer.default,
        )
        try:
            return await _proxy(request, record)
        except PowerXError as error:
            inspector.finish(record, error.status, error=error.code)
            raise
        except Exception:
            inspector.finish(record, 500, error="internal_error")
            raise

    async def _proxy(request: Request, record: RequestRecord) -> Response:
        plugin_id = request.path_params["plugin_id"]
        rest = request.path_params.get("path", "")
        if request.url.path.startswith("/_p/"):
            prefix, path = f"/_p/{plugin_id}", f"api/{rest}" if rest else "api"
        else:
            prefix, path = f"/plugins/{plugin_id}", rest
        # Before anything is held: a request naming an identity without the developer
        # credential is refused (a plugin must not choose who it serves).
        identity_name, identity = simulator.signer.choose(request)
        record.identity = identity_name
        record.replay_of = request.headers.get(REPLAY_HEADER)
        slot = simulator.supervisor.slots.get(plugin_id)
        if slot is not None:  # a tool's endpoint: only for identities holding its permission
            simulator.rbac.check_request(
                slot.manifest, request.method, f"/{path}", identity_name, identity
            )
        body = await request.body()
        inspector.keep_body(record, body)
        started = time.perf_counter()
        held_ms = await simulator.gate.passage(plugin_id)
        # No await between choosing the generation and counting the request in flight:
        # a generation being retired then always finishes this request before it stops.
        generation = simulator.serving(plugin_id)
        generation.enter()
        try:
            # The tenant is the developer's (or the identity's, or the config's) choice; the
            # grant lets the plugin's host API calls for this request act for it, as its
            # identity (see gateway.py).
            tenant = (
                request.headers.get(TENANT_HEADER) or identity.tenant or simulator.config.tenant
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
            grant = simulator.gateway.grant(generation.token, tenant, identity_name)
            headers.append((GRANT_HEADER, grant))
            headers.extend(simulator.signer.headers(identity, plugin_id))
            public_host = request.headers.get("host") or request.url.netloc
            headers.extend(forwarded_headers(public_host, request.url.scheme, prefix))
            headers.append((REQUEST_ID_HEADER, record.id))
            inspector.sending(record, generation.number, held_ms, tenant, headers)
            url = httpx.URL(f"{generation.url}/{path}")
            if request.url.query:  # an empty one would reach the plugin as a trailing "?"
                url = url.copy_with(query=request.url.query.encode())
            # A request may sit at a breakpoint for as long as the developer looks around.
            timeout = None if simulator.debugger.debugging(plugin_id) else client.timeout
            sent = time.perf_counter()
            upstream = await _send_to_plugin(client, request.method, url, headers, body, timeout)
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
            private = simulator.supervisor.private_ports(plugin_id, generation.port)
            response_headers["location"] = rewrite_location(location, private, origin, prefix)
        response_headers["x-powerx-generation"] = str(generation.number)
        response_headers[REQUEST_ID_HEADER] = record.id
        failure = stale.get(plugin_id)
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
                inspector.finish(
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
        chosen = "" if identity_name == simulator.signer.default else f" as {identity_name}"
        simulator.observer.logs.record(
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
        inspector.finish(
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

    async def root(request: Request) -> Response:
        return RedirectResponse("/dashboard")

    dev_sessions = DevSessions(
        simulator.observer.bus.publish,
        simulator.config.dev_hotload.session_ttl_s,
        simulator.state_dir / "build" / "dev",
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await dev_sessions.close()
            if on_shutdown is not None:
                await on_shutdown()

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    app = Starlette(
        routes=[
            Route("/", root),
            Route("/healthz", healthz),
            Route("/internal/debug/status", status),
            Route("/internal/debug/shutdown", shutdown, methods=["POST"]),
            Route("/internal/debug/hot-reload", hot_reload, methods=["POST"]),
            Route("/internal/debug/hot-reload/pending", reload_pending, methods=["POST"]),
            Route("/internal/debug/hot-reload/watch", watch_armed, methods=["POST"]),
            Route("/internal/debug/rollback", rollback, methods=["POST"]),
            Route("/internal/debug/cache/clear", cache_clear, methods=["POST"]),
            Route("/host/api/{path:path}", host_api, methods=methods),
            Route("/_p/{plugin_id}/api", plugin_proxy, methods=methods),
            Route("/_p/{plugin_id}/api/{path:path}", plugin_proxy, methods=methods),
            Route("/plugins/{plugin_id}", plugin_proxy, methods=methods),
            Route("/plugins/{plugin_id}/{path:path}", plugin_proxy, methods=methods),
            *observability_routes(simulator, require_debug),
            *debug_routes(simulator),
            *tool_routes(simulator),
            *request_routes(simulator),
            *mock_data_routes(simulator),
            *dev_routes(),
            *local_install_routes(),
            *type_check_routes,
        ],
        exception_handlers={PowerXError: _on_powerx_error, OSError: _on_os_error},
        middleware=[Middleware(RequestGuard, bind=simulator.config.bind)],
        lifespan=lifespan,
    )
    # Read by the endpoints that follow starlette's way (module functions, state here).
    app.state.simulator = simulator
    app.state.dev_sessions = dev_sessions
    return app
