"""A backend plugin: an HTTP server on PORT with /healthz, /api/v1/hello and
/api/v1/members, /api/v1/teams.

The tenant comes from the signed context the host adds to each request (X-PowerX-CTX,
verified with X-PowerX-CTX-SIG and the secret in PLUGIN_CTX_HMAC_SECRET); a request
without it is answered for no tenant, one with a wrong signature is refused.

Members and teams come from the host's IAM over gRPC (upstream.py: STS token exchange,
reflection, the tenant as metadata), as a PowerXPluginBase plugin gets them:
``/api/v1/members?keyword=ada&view=profile&page_size=5&offset=0``; ``tenant_id=N`` asks
for another tenant, which the host refuses (403 here).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

GREETING = "hello from a backend"


def signed_tenant(request: Request) -> str | None:
    """The context's tenant id, if the request carries a context signed with our secret."""
    context = request.headers.get("x-powerx-ctx")
    if context is None:
        return None
    secret = os.environ.get("PLUGIN_CTX_HMAC_SECRET", "").encode()
    expected = hmac.new(secret, context.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("x-powerx-ctx-sig", "")):
        raise PermissionError("bad context signature")
    return str(json.loads(base64.b64decode(context))["tid"])


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def hello(request: Request) -> JSONResponse:
    try:
        tenant = signed_tenant(request)
    except PermissionError as error:
        return JSONResponse({"error": str(error)}, status_code=401)
    return JSONResponse({"greeting": GREETING, "tenant": tenant, "pid": os.getpid()})


_upstream: Any = None


def upstream() -> Any:
    """The host's gRPC client, made on first use: importing grpc costs ~0.1 s, which a
    program started at every reload should not pay before it is healthy."""
    global _upstream
    if _upstream is None:
        from upstream import Upstream

        _upstream = Upstream()
    return _upstream


def call_iam(request: Request, method: str, fields: dict[str, Any]) -> JSONResponse:
    """Run in Starlette's thread pool (a plain def endpoint): grpcio's calls block."""
    from upstream import UpstreamError

    client = upstream()
    tenant_id = int(request.query_params.get("tenant_id") or client.tenant_id)
    try:
        answer = client.call(method, fields, tenant_id)
    except UpstreamError as error:
        status = {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404}
        return JSONResponse(
            {"error": f"upstream_{error.code.name.lower()}", "message": error.details},
            status_code=status.get(error.code.name, 502),
        )
    data = answer.get("data", {})
    page = data.get("page", {})
    return JSONResponse(
        {
            "tenant_id": tenant_id,
            "items": data.get("items", []),
            "total": int(page.get("total", 0)),
            "next_page_token": page.get("next_page_token", ""),
            "exchanges": client.tokens.exchanges,
        }
    )


def page(request: Request) -> dict[str, int]:
    query = request.query_params
    return {"page_size": int(query.get("page_size", 20)), "offset": int(query.get("offset", 0))}


def members(request: Request) -> JSONResponse:
    query = request.query_params
    view = "MEMBER_VIEW_PROFILE" if query.get("view") == "profile" else "MEMBER_VIEW_BASIC"
    fields = {"keyword": query.get("keyword", ""), "page": page(request), "view": view}
    return call_iam(request, "/powerx.iam.v1.MemberService/ListMembers", fields)


def teams(request: Request) -> JSONResponse:
    fields = {"keyword": request.query_params.get("keyword", ""), "page": page(request)}
    return call_iam(request, "/powerx.iam.v1.TeamService/ListTeams", fields)


app = Starlette(
    routes=[
        Route("/healthz", healthz),
        Route("/api/v1/hello", hello),
        Route("/api/v1/members", members),
        Route("/api/v1/teams", teams),
    ]
)

if __name__ == "__main__":
    host, _, port = os.environ.get("POWERX_HTTP_ADDR", "").rpartition(":")
    uvicorn.run(app, host=host or "127.0.0.1", port=int(port or os.environ["PORT"]))
