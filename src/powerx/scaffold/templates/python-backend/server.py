"""__PLUGIN_NAME__: an HTTP server on PORT (Starlette on uvicorn), started as PowerX starts one.

The tenant comes from the signed context the host adds to each request (X-PowerX-CTX,
verified with X-PowerX-CTX-SIG and the secret in PLUGIN_CTX_HMAC_SECRET).
"""

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

GREETING = "hello from __PLUGIN_NAME__"


def signed_tenant(request: Request) -> str | None:
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
    return JSONResponse({"greeting": GREETING, "tenant": tenant})


app = Starlette(routes=[Route("/healthz", healthz), Route("/api/v1/hello", hello)])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
