"""The simulator's HTTP surface (Starlette): the routes of ``host/routes/`` assembled into
one app, with its error handlers, middleware, lifespan and the state the endpoints read
(``app.state``: see ``host/routes/state.py``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from powerx.errors import PowerXError, storage_error
from powerx.host.debug_connection import HeldConnection
from powerx.host.dev_sessions import DevSessions
from powerx.host.plugin_proxy import PluginProxy
from powerx.host.request_guard import RequestGuard
from powerx.host.routes import (
    dashboard,
    debug,
    dev,
    local_install,
    mock_data,
    observe,
    plugins,
    reload,
    requests,
    streams,
    tools,
    type_checks,
)
from powerx.host.routes.state import AppControls
from powerx.host.simulator import Simulator

__all__ = ["ROUTES", "AppControls", "create_app", "error_response"]

ROUTES: list[BaseRoute] = [
    *plugins.routes,
    *reload.routes,
    *type_checks.routes,
    *observe.routes,
    *dashboard.routes,
    *streams.routes,
    *debug.routes,
    *tools.routes,
    *requests.routes,
    *mock_data.routes,
    *dev.routes,
    *local_install.routes,
]


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
    simulator: Simulator,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    controls: AppControls | None = None,
) -> Starlette:
    """The ASGI app; ``on_shutdown`` runs before the server exits (plugins stop there);
    ``controls`` are the dashboard key and stop request the caller shares with it."""
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

    app = Starlette(
        routes=ROUTES,
        exception_handlers={PowerXError: _on_powerx_error, OSError: _on_os_error},
        middleware=[Middleware(RequestGuard, bind=simulator.config.bind)],
        lifespan=lifespan,
    )
    app.state.simulator = simulator
    app.state.controls = controls if controls is not None else AppControls()
    app.state.dev_sessions = dev_sessions
    app.state.plugin_proxy = PluginProxy(simulator)
    app.state.held_connections = dict[str, HeldConnection]()  # console connections, by id
    app.state.audit_verification = observe.CachedVerification(simulator.observer.audit_log)
    return app
