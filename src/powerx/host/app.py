"""The simulator's HTTP surface (Starlette): plugin routing, host API, internal debug API."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from powerx.auth import check_bearer
from powerx.errors import PowerXError, storage_error
from powerx.host.debug_routes import debug_routes
from powerx.host.dev_routes import dev_routes
from powerx.host.dev_sessions import DevSessions
from powerx.host.local_install_routes import local_install_routes
from powerx.host.mock_data_routes import mock_data_routes
from powerx.host.observe_routes import observability_routes, reader_check
from powerx.host.plugin_proxy import PluginProxy
from powerx.host.reload_routes import reload_routes
from powerx.host.request_guard import RequestGuard
from powerx.host.request_routes import request_routes
from powerx.host.simulator import Simulator
from powerx.host.tool_routes import tool_routes
from powerx.host.type_check_routes import type_check_routes


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


def create_app(
    simulator: Simulator, on_shutdown: Callable[[], Awaitable[None]] | None = None
) -> Starlette:
    """The ASGI app; ``on_shutdown`` runs before the server exits (plugins stop there)."""
    proxy = PluginProxy(simulator)

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

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True, "image": simulator.image.name})

    async def host_api(request: Request) -> Response:
        return await simulator.gateway.handle(request)

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
            *reload_routes(simulator),
            Route("/host/api/{path:path}", host_api, methods=methods),
            Route("/_p/{plugin_id}/api", proxy.handle, methods=methods),
            Route("/_p/{plugin_id}/api/{path:path}", proxy.handle, methods=methods),
            Route("/plugins/{plugin_id}", proxy.handle, methods=methods),
            Route("/plugins/{plugin_id}/{path:path}", proxy.handle, methods=methods),
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
