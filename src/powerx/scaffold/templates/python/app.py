"""__PLUGIN_NAME__: an ASGI app (Starlette) the simulator serves at /plugins/__PLUGIN_ID__/."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from powerx_plugin import host_for

GREETING = "hello from __PLUGIN_NAME__"


async def home(request: Request) -> JSONResponse:
    host = host_for(request)  # the host API, for the tenant of this request
    contacts = await host.list_contacts()
    return JSONResponse({"greeting": GREETING, "tenant": host.tenant, "contacts": len(contacts)})


app = Starlette(routes=[Route("/", home)])
