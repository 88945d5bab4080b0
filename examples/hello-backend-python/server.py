"""A backend plugin: an HTTP server on PORT with /healthz and /api/v1/hello.

The tenant comes from the signed context the host adds to each request (X-PowerX-CTX,
verified with X-PowerX-CTX-SIG and the secret in PLUGIN_CTX_HMAC_SECRET); a request
without it is answered for no tenant, one with a wrong signature is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os

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


app = Starlette(routes=[Route("/healthz", healthz), Route("/api/v1/hello", hello)])

if __name__ == "__main__":
    host, _, port = os.environ.get("POWERX_HTTP_ADDR", "").rpartition(":")
    uvicorn.run(app, host=host or "127.0.0.1", port=int(port or os.environ["PORT"]))
