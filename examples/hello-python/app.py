"""Hello Python: a PowerX plugin served by the host simulator."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from powerx_plugin import HostApiError, host_for

GREETING = "hello from python"


async def home(request: Request) -> JSONResponse:
    host = host_for(request)
    contacts = await host.list_contacts()
    return JSONResponse(
        {
            "plugin": "hello-python",
            "greeting": GREETING,
            "tenant": host.tenant,
            "contacts": len(contacts),
            "first_contact": contacts[0]["name"] if contacts else None,
        }
    )


async def note(request: Request) -> JSONResponse:
    host = host_for(request)
    key = request.path_params["key"]
    if request.method == "PUT":
        await host.kv_put(key, (await request.body()).decode())
    try:
        return JSONResponse({"key": key, "value": await host.kv_get(key)})
    except HostApiError as error:
        return JSONResponse(
            {"error": error.code, "message": error.message}, status_code=error.status
        )


async def messages(request: Request) -> JSONResponse:
    """Calls an API whose scope (messages:read) the manifest does not declare."""
    try:
        return JSONResponse(await host_for(request).list_messages())
    except HostApiError as error:
        body = {"error": error.code, "message": error.message, "fix": error.fix}
        return JSONResponse(body, status_code=error.status)


app = Starlette(
    routes=[
        Route("/", home),
        Route("/notes/{key}", note, methods=["GET", "PUT"]),
        Route("/messages", messages),
    ]
)
