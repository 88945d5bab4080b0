"""A manifest's tools, called as an agent of PowerX would call them, schema-checked both ways.

A tool (``tools`` in ``plugin.yaml``) is an endpoint of the plugin with a JSON Schema for
what it takes (``input_schema``) and for what it answers (``output_schema``). A call:

1. checks the input against ``input_schema``; a violation refuses the call before anything
   is sent (422 ``tool_input_invalid``, each violation named by its JSON path, ``$.title``);
2. sends it to the plugin through the simulator's own routing, as the chosen identity:
   ``/_p/<id>`` + the endpoint, so RBAC, the signed context, forwarding and the access log
   apply as to any request (a GET takes the input as its query, a POST/PUT/PATCH as its
   JSON body; ``{name}`` or ``:name`` in the endpoint is filled from the input);
3. checks a 2xx answer against ``output_schema`` and names each violation.

A refusal by the simulator itself (``rbac_denied``, ``plugin_unavailable`` ...) is raised
as that error; the plugin's own error answer is returned as the call's result.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import jsonschema
from starlette.types import ASGIApp

from powerx.auth import require_credential
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError, Problem
from powerx.host.identity import IDENTITY_HEADER
from powerx.host.rbac import DEFAULT_TOOL_METHOD, ENDPOINT_PARAMETER, RbacGate, tool_permission
from powerx.manifest import Manifest, Tool

__all__ = ["ToolRequest", "call_tool", "describe_tools", "schema_violations", "tool_request"]

MAX_VIOLATIONS = 50
# Where the simulator's own answers differ from a plugin's: a plugin's carry its generation.
GENERATION_HEADER = "x-powerx-generation"
_QUERY_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})


def _json_path(parts: Iterable[str | int]) -> str:
    """``$.items[0].id``, JSONPath as jsonschema spells it (``$['a b']`` for odd keys)."""
    path = "$"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.isidentifier():
            path += f".{part}"
        else:
            path += f"[{json.dumps(part)}]"
    return path


def schema_violations(schema: dict[str, Any], instance: Any) -> list[Problem]:
    """Every place ``instance`` breaks ``schema``, each named by its JSON path; a missing
    required property is named by its own path (``$.title``), not its parent's."""
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    problems: list[Problem] = []
    errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.path])
    for error in errors[:MAX_VIOLATIONS]:
        parts = list(error.absolute_path)
        required = error.validator_value if error.validator == "required" else None
        if isinstance(required, list) and isinstance(error.instance, dict):
            # One error per missing name; its message quotes the name.
            missing = [
                name
                for name in required
                if name not in error.instance and repr(name) in error.message
            ]
            where = _json_path([*parts, *missing[:1]])
            problems.append(Problem(where, f"{where}: required, but missing"))
            continue
        where = _json_path(parts)
        problems.append(Problem(where, f"{where}: {error.message[:300]}"))
    if len(errors) > MAX_VIOLATIONS:
        problems.append(Problem("$", f"... and {len(errors) - MAX_VIOLATIONS} more"))
    return problems


def public_path(plugin_id: str, endpoint: str) -> str:
    """Where the simulator routes a request to ``endpoint`` of the plugin: PowerX's
    ``/_p/<id>/api/...`` for its API, the ``/plugins/<id>`` mount for any other path."""
    if endpoint == "/api" or endpoint.startswith("/api/"):
        return f"/_p/{plugin_id}{endpoint}"
    return f"/plugins/{plugin_id}{endpoint}"


def describe_tools(manifest: Manifest, rbac: RbacGate) -> list[dict[str, Any]]:
    """A manifest's tools, with the permission each needs and who may call it."""
    described = []
    for tool in manifest.tools:
        need = tool_permission(manifest, tool)
        described.append(
            {
                "plugin": manifest.id,
                "id": tool.id,
                "name": tool.name,
                "description": tool.description,
                "transport": tool.transport,
                "method": tool.method or DEFAULT_TOOL_METHOD,
                "endpoint": tool.endpoint,
                "path": public_path(manifest.id, tool.endpoint),
                "rbac_resource": tool.rbac_resource,
                "permission": str(need) if need else None,
                "identities": rbac.holders(need) if need else sorted(rbac.identities),
                "input_schema": tool.input_schema,
                "output_schema": tool.output_schema,
            }
        )
    return described


def find_tool(manifest: Manifest, tool_id: str) -> Tool:
    for tool in manifest.tools:
        if tool.id == tool_id:
            return tool
    declared = ", ".join(t.id for t in manifest.tools) or "none"
    raise PowerXError(
        ErrorCode.TOOL_NOT_FOUND,
        f"Plugin {manifest.id} has no tool '{tool_id[:100]}' (its tools: {declared}).",
        f"list them with `powerx tools list {manifest.id}`, or declare it under tools: in "
        "plugin.yaml.",
        status=404,
        details={"plugin": manifest.id, "tool": tool_id[:100]},
    )


@dataclass(frozen=True)
class ToolRequest:
    """The HTTP request a tool call becomes."""

    method: str
    path: str  # on the simulator: /_p/<id>/api/v1/notes/3
    query: list[tuple[str, str | int | float | bool | None]] = field(default_factory=list)
    body: Any = None
    has_body: bool = False


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def tool_request(plugin_id: str, tool: Tool, given: Any) -> ToolRequest:
    """Place the (already valid) input: path parameters from it, the rest as the query
    (GET, HEAD, DELETE) or as the JSON body."""
    method = tool.method or DEFAULT_TOOL_METHOD
    rest = dict(given) if isinstance(given, dict) else None
    endpoint, missing = tool.endpoint, []
    for found in ENDPOINT_PARAMETER.finditer(tool.endpoint):
        name = found.group("brace") or found.group("colon")
        if rest is None or name not in rest:
            missing.append(name)
            continue
        value = quote(_query_value(rest.pop(name)), safe="")
        endpoint = endpoint.replace(found.group(0), value, 1)
    if missing:
        problems = [
            Problem(
                _json_path([n]),
                f"{_json_path([n])}: required by the endpoint {tool.endpoint}, but missing",
            )
            for n in missing
        ]
        raise _input_invalid(plugin_id, tool, problems)
    path = public_path(plugin_id, endpoint)
    if method in _QUERY_METHODS:
        if given is not None and rest is None:
            problem = Problem("$", f"$: a {method} tool takes an object (its query parameters)")
            raise _input_invalid(plugin_id, tool, [problem])
        query: list[tuple[str, str | int | float | bool | None]] = []
        for key, value in (rest or {}).items():
            values = value if isinstance(value, list) else [value]
            query += [(key, _query_value(item)) for item in values if item is not None]
        return ToolRequest(method, path, query)
    return ToolRequest(method, path, body=given if rest is None else rest, has_body=True)


def _input_invalid(plugin_id: str, tool: Tool, problems: list[Problem]) -> PowerXError:
    return PowerXError(
        ErrorCode.TOOL_INPUT_INVALID,
        f"The input of tool '{tool.id}' ({plugin_id}) breaks its input_schema in "
        f"{len(problems)} place(s); nothing was sent.",
        f"fix each field listed below (the schema: `powerx tools list {plugin_id} --json`).",
        status=422,
        problems=problems,
        details={"plugin": plugin_id, "tool": tool.id},
    )


def _answer(response: httpx.Response) -> tuple[Any, bool]:
    """The answer's body (parsed JSON, else text) and whether it was JSON."""
    if not response.content:
        return None, False
    try:
        return response.json(), True
    except ValueError:
        return response.text[:10_000], False


async def call_tool(
    app: ASGIApp,
    base_url: str,
    manifest: Manifest,
    tool_id: str,
    given: Any,
    identity: str | None,
    default_identity: str,
) -> dict[str, Any]:
    """Call ``tool_id`` of ``manifest`` with ``given`` as ``identity`` (None: the run's)
    through ``app``, the simulator's own ASGI app, and report what came back."""
    tool = find_tool(manifest, tool_id)
    if tool.transport != "http":
        raise PowerXError(
            ErrorCode.TOOL_TRANSPORT_UNSUPPORTED,
            f"Tool '{tool.id}' is called over {tool.transport}; the simulator calls http tools.",
            "give the tool an http endpoint to call it here.",
            details={"plugin": manifest.id, "tool": tool.id},
        )
    if tool.input_schema is not None:
        problems = schema_violations(tool.input_schema, given)
        if problems:
            raise _input_invalid(manifest.id, tool, problems)
    request = tool_request(manifest.id, tool, given)
    headers = {"accept": "application/json"}
    if identity is not None:
        # Naming an identity takes the developer credential, as with any request.
        headers[IDENTITY_HEADER] = identity
        headers["authorization"] = f"Bearer {require_credential().token}"
    started = time.perf_counter()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=base_url, timeout=None
    ) as client:
        response = await client.request(
            request.method,
            request.path,
            params=request.query,
            json=request.body if request.has_body else None,
            headers=headers,
        )
    duration_ms = (time.perf_counter() - started) * 1000
    output, is_json = _answer(response)
    if response.status_code >= 400 and GENERATION_HEADER not in response.headers:
        raise PowerXError.from_dict(
            output if isinstance(output, dict) else {}, response.status_code
        )
    violations: list[Problem] = []
    if 200 <= response.status_code < 300 and tool.output_schema is not None:
        if is_json:
            violations = schema_violations(tool.output_schema, output)
        else:
            kind = response.headers.get("content-type", "no content-type")
            violations = [Problem("$", f"$: the answer is not JSON ({kind})")]
    return {
        "plugin": manifest.id,
        "tool": tool.id,
        "identity": identity or default_identity,
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "status": response.status_code,
        "generation": response.headers.get(GENERATION_HEADER),
        "duration_ms": round(duration_ms, 1),
        "output": output,
        "violations": [v.to_dict() for v in violations],
        "ok": response.status_code < 400 and not violations,
    }
