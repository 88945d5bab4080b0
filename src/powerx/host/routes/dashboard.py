"""The Hot Reload Dashboard's page and the one-time link that opens it.

- ``GET /dashboard?key=KEY``: trades the key in the URL for an HttpOnly SameSite=Strict
  cookie (303 to ``/dashboard``), so it leaves the address bar and the history.
- ``GET /dashboard``: the page, with that cookie; without it (or with a wrong key) a page
  that says how to open it, 401.
- ``GET /internal/debug/dashboard-link``: the link with the key (the credential).

All need the observability flag.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from powerx.dashboard import dashboard_html
from powerx.host.routes import state
from powerx.host.routes.guards import (
    DASHBOARD_COOKIE,
    is_dashboard_key,
    require_debug,
    require_observability_flag,
)

__all__ = ["routes"]

_REFUSED_PAGE = """<!doctype html><meta charset="utf-8"><title>PowerX dashboard</title>
<body style="font-family:system-ui;margin:3em;max-width:40em">
<h1>Open the dashboard with its link</h1>
<p>The Hot Reload Dashboard shows plugin logs and the audit trail, so it needs a key.
Open the link that <code>powerx host start</code> printed, or run
<code>powerx host status</code> to print it again.</p></body>"""


async def dashboard_link(request: Request) -> Response:
    simulator = state.simulator(request)
    require_debug(request)
    require_observability_flag(simulator)
    key = state.controls(request).dashboard_key
    return JSONResponse({"url": f"{simulator.url}/dashboard?key={key}"})


async def dashboard(request: Request) -> Response:
    simulator = state.simulator(request)
    require_observability_flag(simulator)
    key = request.query_params.get("key")
    if key is not None:
        if not is_dashboard_key(request, key):
            return HTMLResponse(_REFUSED_PAGE, status_code=401)
        # Trade the key in the URL for a cookie, so it leaves the address bar and history.
        response = RedirectResponse("/dashboard", status_code=303)
        response.set_cookie(
            DASHBOARD_COOKIE,
            state.controls(request).dashboard_key,
            httponly=True,
            samesite="strict",
            path="/",
        )
        return response
    if not is_dashboard_key(request, request.cookies.get(DASHBOARD_COOKIE, "")):
        return HTMLResponse(_REFUSED_PAGE, status_code=401)
    return HTMLResponse(dashboard_html(), headers={"cache-control": "no-store"})


routes = [
    Route("/dashboard", dashboard),
    Route("/internal/debug/dashboard-link", dashboard_link),
]
