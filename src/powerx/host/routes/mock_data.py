"""HTTP routes of the editable mock data (``powerx data``, the dashboard's panel).

- ``GET /internal/debug/mock-data``: each tenant's file, revision, counts and the last
  refused edit (file:line, message, fix).
- ``GET /internal/debug/mock-data/{tenant}``: the same for one tenant, with the data it
  serves now.
- ``POST /internal/debug/mock-data/reset`` ``{"tenant"?: name}``: the seed again, for one
  tenant or every one known, written to the files and served at once.

They take the developer credential or the dashboard's cookie; the request guard keeps
other sites out (Host, and Origin on the POST).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.mock_data import MockDataFiles
from powerx.host.routes import state
from powerx.host.routes.guards import json_or_none, require_reader

__all__ = ["routes"]


def _known(files: MockDataFiles, tenant: str) -> str:
    known = {entry["tenant"] for entry in files.listing()}
    if tenant not in known:
        raise PowerXError(
            ErrorCode.MOCK_DATA_TENANT_UNKNOWN,
            f"No tenant '{tenant[:100]}' has mock data in this simulator.",
            f"known: {', '.join(sorted(known)) or 'none'}; a tenant gets its data (and its "
            "file) when a request names it (X-PowerX-Tenant) or an identity has it.",
            status=404,
        )
    return tenant


async def listing(request: Request) -> Response:
    require_reader(request)
    files = state.simulator(request).mock_data
    return JSONResponse({"folder": str(files.folder), "tenants": files.listing()})


async def one(request: Request) -> Response:
    require_reader(request)
    files = state.simulator(request).mock_data
    tenant = _known(files, request.path_params["tenant"])
    return JSONResponse(files.snapshot(tenant))


async def reset(request: Request) -> Response:
    require_reader(request)
    files = state.simulator(request).mock_data
    body: Any = {}
    if (await request.body()).strip():  # an empty body resets every tenant
        body = await json_or_none(request)
    if not isinstance(body, dict) or not isinstance(body.get("tenant") or "", str):
        raise PowerXError(
            ErrorCode.INVALID_BODY,
            'A reset takes {"tenant"?: name} (no tenant: every one).',
            'send e.g. {"tenant": "acme"}, or an empty body.',
        )
    named = body.get("tenant")
    tenants = [_known(files, named)] if named else [e["tenant"] for e in files.listing()]
    done = [(await files.reset(tenant)).to_dict() for tenant in tenants]
    return JSONResponse({"reset": done})


routes = [
    Route("/internal/debug/mock-data", listing),
    Route("/internal/debug/mock-data/reset", reset, methods=["POST"]),
    Route("/internal/debug/mock-data/{tenant}", one),
]
