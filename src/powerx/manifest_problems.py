"""Turning a manifest's validation errors into :class:`Problem` items: where, what, and a fix."""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from powerx.errors import PowerXError, Problem

RUNTIMES = ("python3.11", "node18")


class ManifestError(PowerXError):
    """The manifest is missing, unreadable or invalid; ``problems`` lists every issue."""


PROGRAM: Final = "program"

FIXES = {
    "id": "use a reverse-DNS id such as 'com.example.hello'",
    "name": "give the plugin a human-readable name, e.g. 'Hello'",
    "version": "use a SemVer version such as '1.0.0'",
    "description": "describe the plugin in one sentence",
    "runtime": f"set runtime to one of: {', '.join(RUNTIMES)} (handler mode), or {PROGRAM} "
    "(a program named by backend.entry)",
    "runtime.kind": "the simulator runs kind 'process' (a program named by runtime.entry)",
    "entry": "point entry at the plugin's main file, e.g. 'app.py:app' or 'src/index.ts'",
    "host": "declare the host API range, e.g. host: {api: '>=2.3 <3'}",
    "host.api": "declare a range such as '>=2.3 <3', '^2.3', '~2.4' or '2.4'",
    "permissions": "list host API scopes such as 'contacts:read', or resources such as "
    "{resource: note, actions: [read, create]}",
    "egress": "list host names the plugin may call, e.g. 'api.example.com' or "
    "'localhost:8080' (a local service needs its port)",
    "build": "use build: {command: ..., output: ...} or build: {esbuild: {...}}",
    "backend": "use backend: {entry: backend/bin/plugin, port: 8091, health: /healthz}",
    "backend.entry": "name the program the host runs, e.g. 'backend/bin/plugin'",
    "backend.port": "use a port from 1 to 65535, or leave it out",
    "backend.health": "use a URL path such as '/healthz'",
    "routes": "use routes: {basePath: /v1, adminManifest: /api/v1/admin/manifest, "
    "rbac: /api/v1/admin/rbac}",
    "menus": "give each menu an id and a title, e.g. "
    "{id: note, title: menu.note, path: /plugins/note}",
    "agents": "give each agent an id and a name; default_tools names tools of this plugin",
    "tools": "give each tool an id, a name and an endpoint, e.g. {id: note.create, name: Create, "
    "transport: http, endpoint: /api/v1/notes, method: POST}",
    "tools.transport": "use transport 'http' or 'grpc'",
    "tools.method": "use GET, POST, PUT, PATCH or DELETE",
    "tools.input_schema": "fix the JSON Schema (https://json-schema.org), e.g. "
    "{type: object, properties: {title: {type: string}}}",
    "tools.output_schema": "fix the JSON Schema (https://json-schema.org), e.g. "
    "{type: object, properties: {id: {type: integer}}}",
    "events": "use events: {topics: [note.created]} or {publish: [...], subscribe: [...]}",
    "assets": "use assets: {webAdminPath: web-admin/.output}",
}

# Problems are written for the file as the developer wrote it: the parser moves resource
# items of ``permissions`` and PowerX's ``runtime`` mapping into fields of their own.
MovedItems = Mapping[str, tuple[str, Sequence[int] | None]]

# A bounded repr: a YAML alias bomb is one list shared a billion times, and a plain repr
# would print every copy.
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 60, 60


def describe(value: Any) -> str:
    try:
        text = _SHORT.repr(value)
    except ValueError:  # an int with more digits than Python will print (YAML hex allows it)
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def written_loc(loc: Sequence[Any], moved: MovedItems) -> list[str]:
    """The location as written in the file (``rbac_resources.0`` -> ``permissions.2``)."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in moved:
        name, indexes = moved[parts[0]]
        parts[0] = name
        if indexes is not None and len(parts) > 1 and parts[1].isdigit():
            parts[1] = str(indexes[int(parts[1])])
    return parts


def _fix_for(parts: list[str]) -> str | None:
    """The most specific fix: ``tools.0.method`` -> ``tools.method`` -> ``tools``."""
    named = [p for p in parts if not p.isdigit()]
    for size in range(len(named), 0, -1):
        fix = FIXES.get(".".join(named[:size]))
        if fix:
            return fix
    return None


def field_problem(error: Mapping[str, Any], known: Iterable[str], moved: MovedItems) -> Problem:
    parts = written_loc(error["loc"], moved)
    loc = ".".join(parts)
    top = parts[0] if parts else ""
    kind = error["type"]
    if kind == "extra_forbidden":
        return unknown_field(loc, parts[-1], known)
    if kind == "missing":
        return Problem(loc, f"required field '{loc}' is missing", _fix_for(parts))
    reason = str(error["msg"]).removeprefix("Value error, ")
    if parts[-1] in ("input_schema", "output_schema"):  # the reason points into the schema
        return Problem(loc, f"{loc}: {reason}", _fix_for(parts))
    if kind == "literal_error" and top == "runtime" and len(parts) == 1:
        reason = "unknown runtime"
    return Problem(
        loc, f"{loc}: bad value {describe(error.get('input'))}: {reason}", _fix_for(parts)
    )


def unknown_field(loc: str, key: str, known: Iterable[str], cutoff: float = 0.6) -> Problem:
    names = list(known)
    guess = difflib.get_close_matches(key, [*names, "host.api"], n=1, cutoff=cutoff)
    fix = f"did you mean '{guess[0]}'?" if guess else f"remove it; known fields: {', '.join(names)}"
    return Problem(loc, f"unknown field '{loc}'", fix)
