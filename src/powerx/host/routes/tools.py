"""HTTP routes of the manifests' tools and menus (``powerx tools``, the dashboard).

- ``GET /internal/debug/tools[?plugin=ID]``: each mounted plugin's menus and tools, with
  the permission each tool needs and the configured identities that hold it.
- ``POST /internal/debug/tools/call`` ``{"plugin", "tool", "input", "identity"?}``: call a
  tool as an identity (host/tools.py); the answer, its status and the output schema's
  violations.

Both take the developer credential or the dashboard's cookie: a tool call is a request to
the plugin, which anyone on this machine can send; naming an identity is the developer's
choice, and the dashboard's key is what makes its holder the developer. A cross-site page
cannot send one (the request guard refuses a POST from another origin).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.routes import state
from powerx.host.routes.guards import json_or_none, require_reader
from powerx.host.simulator import Simulator
from powerx.host.tools import call_tool, describe_tools
from powerx.manifest import Manifest

__all__ = ["routes"]


def _manifest(simulator: Simulator, plugin: str) -> Manifest:
    slot = simulator.supervisor.slots.get(plugin)
    if slot is None:
        mounted = ", ".join(simulator.supervisor.slots) or "none"
        raise PowerXError(
            ErrorCode.PLUGIN_NOT_FOUND,
            f"No plugin '{plugin[:100]}' is mounted.",
            f"mounted: {mounted}; mount it with `powerx host start --mock PATH`.",
            status=404,
        )
    return slot.manifest


async def list_tools(request: Request) -> Response:
    require_reader(request)
    simulator = state.simulator(request)
    wanted = request.query_params.get("plugin")
    ids = [wanted] if wanted else list(simulator.supervisor.slots)
    plugins = []
    for plugin in ids:
        manifest = _manifest(simulator, plugin)
        plugins.append(
            {
                "id": manifest.id,
                "name": manifest.name,
                "menus": [menu.model_dump(mode="json") for menu in manifest.menus],
                "tools": describe_tools(manifest, simulator.rbac),
            }
        )
    return JSONResponse(
        {
            "identity": simulator.signer.default,
            "identities": sorted(simulator.signer.identities),
            "plugins": plugins,
        }
    )


async def call(request: Request) -> Response:
    require_reader(request)
    simulator = state.simulator(request)
    body = await json_or_none(request)
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("plugin"), str)
        or not isinstance(body.get("tool"), str)
        or not isinstance(body.get("identity") or "", str)
    ):
        raise PowerXError(
            ErrorCode.INVALID_BODY,
            'A tool call needs {"plugin": id, "tool": id, "input"?: JSON, "identity"?: name}.',
            "send the plugin and tool ids as JSON.",
        )
    manifest = _manifest(simulator, body["plugin"])
    result = await call_tool(
        request.app,
        simulator.url,
        manifest,
        body["tool"],
        body.get("input"),
        body.get("identity") or None,
        simulator.signer.default,
    )
    return JSONResponse(result)


routes = [
    Route("/internal/debug/tools", list_tools),
    Route("/internal/debug/tools/call", call, methods=["POST"]),
]
