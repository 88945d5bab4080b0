"""The plugins' side of the simulator and its own liveness.

- ``/plugins/{plugin_id}[/{path}]`` and ``/_p/{plugin_id}/api[/{path}]``: a request to a
  plugin, through the proxy (host/plugin_proxy.py), any method.
- ``/host/api/{path}``: the host API a plugin calls (host/gateway.py), any method.
- ``GET /``: to the dashboard. ``GET /healthz``: up, and which host image it simulates.
- ``GET /internal/debug/status``: the simulator's status (the credential or the dashboard
  cookie); ``POST /internal/debug/shutdown``: stop the simulator (the credential), 202.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from powerx.host.routes import state
from powerx.host.routes.guards import require_debug, require_reader

__all__ = ["routes"]

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


async def root(request: Request) -> Response:
    return RedirectResponse("/dashboard")


async def healthz(request: Request) -> Response:
    return JSONResponse({"ok": True, "image": state.simulator(request).image.name})


async def status(request: Request) -> Response:
    require_reader(request)
    return JSONResponse(state.simulator(request).status())


async def shutdown(request: Request) -> Response:
    require_debug(request)
    state.controls(request).shutdown_requested.set()
    return JSONResponse({"ok": True, "message": "The simulator is stopping."}, status_code=202)


async def host_api(request: Request) -> Response:
    return await state.simulator(request).gateway.handle(request)


async def to_plugin(request: Request) -> Response:
    return await state.plugin_proxy(request).handle(request)


routes = [
    Route("/", root),
    Route("/healthz", healthz),
    Route("/internal/debug/status", status),
    Route("/internal/debug/shutdown", shutdown, methods=["POST"]),
    Route("/host/api/{path:path}", host_api, methods=_METHODS),
    Route("/_p/{plugin_id}/api", to_plugin, methods=_METHODS),
    Route("/_p/{plugin_id}/api/{path:path}", to_plugin, methods=_METHODS),
    Route("/plugins/{plugin_id}", to_plugin, methods=_METHODS),
    Route("/plugins/{plugin_id}/{path:path}", to_plugin, methods=_METHODS),
]
