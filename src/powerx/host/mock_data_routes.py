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
from powerx.host.json_body import read_json
from powerx.host.mock_data import MockDataFiles
from powerx.host.observe_routes import reader_check
from powerx.host.simulator import Simulator

__all__ = ["mock_data_routes"]


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


def mock_data_routes(simulator: Simulator) -> list[Route]:
    require_reader = reader_check(simulator)
    files = simulator.mock_data

    async def listing(request: Request) -> Response:
        require_reader(request)
        return JSONResponse({"folder": str(files.folder), "tenants": files.listing()})

    async def one(request: Request) -> Response:
        require_reader(request)
        tenant = _known(files, request.path_params["tenant"])
        return JSONResponse(files.snapshot(tenant))

    async def reset(request: Request) -> Response:
        require_reader(request)
        body: Any = {}
        if (await request.body()).strip():
            try:
                body = await read_json(request)
            except ValueError:
                body = None
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

    return [
        Route("/internal/debug/mock-data", listing),
        Route("/internal/debug/mock-data/reset", reset, methods=["POST"]),
        Route("/internal/debug/mock-data/{tenant}", one),
    ]
