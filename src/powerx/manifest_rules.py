"""The rules that differ between the two manifest files, and those that span fields.

``plugin.yaml`` is PowerX's: read as its host reads it, keys it knows but the simulator does
not use are accepted, and the simulator's own keys (runtime, entry, host, build, egress) are
optional. ``powerx.plugin.yaml`` is the simulator's older file: runtime, entry and host are
required, and every key must be known.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from powerx.errors import Problem
from powerx.manifest_problems import FIXES, PROGRAM, RUNTIMES, MovedItems, unknown_field

if TYPE_CHECKING:
    from powerx.manifest import Manifest

# Keys PowerX's Go structs read from plugin.yaml (PowerXPluginBase contracts/manifest.go,
# PowerX pkg/plugin_mgr/manifest.go) that the simulator does not use: accepted as they are.
HOST_ONLY_KEYS = frozenset(
    {
        "frontend", "workflows", "dependencies", "config_schema", "corex_version",
        "endpoints", "catalogs", "exposure", "rbac", "migrations", "checksums", "signature",
        "metadata", "created_at", "updated_at",
    }
)  # fmt: skip
_LEGACY_REQUIRED = ("runtime", "entry", "host")
# Fields the parser fills from other keys; not keys a developer writes.
INTERNAL_FIELDS = ("rbac_resources", "host_runtime")
# A key this close to a known one is a typo, not a key of a newer host: refused.
_TYPO_CUTOFF = 0.85


def prepare(
    raw: dict[str, Any], *, plugin_yaml: bool
) -> tuple[dict[str, Any], MovedItems, list[Problem]]:
    """The mapping the model validates, where moved items came from, and the problems of
    the file's own rules (missing required keys, typos)."""
    from powerx.manifest import Manifest  # the model imports this module

    data = dict(raw)
    moved: dict[str, tuple[str, list[int] | None]] = {}
    problems: list[Problem] = []
    permissions = data.get("permissions")
    if isinstance(permissions, list) and any(isinstance(p, dict) for p in permissions):
        # PowerX's {resource, actions} items are kept apart from the plain scopes.
        items = list(enumerate(permissions))
        data["permissions"] = [p for _, p in items if not isinstance(p, dict)]
        data["rbac_resources"] = [p for _, p in items if isinstance(p, dict)]
        moved["permissions"] = ("permissions", [i for i, p in items if not isinstance(p, dict)])
        moved["rbac_resources"] = ("permissions", [i for i, p in items if isinstance(p, dict)])
    if isinstance(data.get("runtime"), dict):  # PowerX's {kind: process, entry, ...}
        data["host_runtime"] = data.pop("runtime")
        moved["host_runtime"] = ("runtime", None)
    if not plugin_yaml:
        problems += [
            Problem(key, f"required field '{key}' is missing", FIXES[key])
            for key in _LEGACY_REQUIRED
            if key not in raw
        ]
        return data, moved, problems
    known = [name for name in Manifest.model_fields if name not in INTERNAL_FIELDS]
    for key in [k for k in data if k not in Manifest.model_fields]:
        if key in HOST_ONLY_KEYS:
            data.pop(key)
            continue
        typo = unknown_field(str(key), str(key), known, cutoff=_TYPO_CUTOFF)
        if typo.fix and typo.fix.startswith("did you mean"):
            problems.append(typo)
        data.pop(key)  # PowerX's reader ignores keys it does not know; so does the simulator
    return data, moved, problems


def cross_field_problems(manifest: Manifest) -> list[Problem]:
    """What no single field shows: how the plugin runs, and references between sections."""
    problems = _how_it_runs(manifest)
    resources = {r.resource.strip().lower() for r in manifest.rbac_resources}
    resources |= {r.short_name for r in manifest.rbac_resources}
    tool_ids = [tool.id for tool in manifest.tools]
    for index, tool in enumerate(manifest.tools):
        where = f"tools.{index}"
        if tool.plugin_id is not None and tool.plugin_id != manifest.id:
            problems.append(_other_plugin(f"{where}.plugin_id", tool.plugin_id, manifest.id))
        if tool_ids.index(tool.id) != index:
            problems.append(
                Problem(f"{where}.id", f"{where}.id: tool '{tool.id}' is declared twice",
                        "give each tool its own id")
            )  # fmt: skip
        if tool.rbac_resource is not None and tool.rbac_resource.strip().lower() not in resources:
            problems.append(
                Problem(
                    f"{where}.rbac_resource",
                    f"{where}.rbac_resource: tool '{tool.id}' names resource "
                    f"'{tool.rbac_resource}', which permissions do not declare",
                    f"declare it: permissions: [{{resource: {tool.rbac_resource}, "
                    "actions: [read]}}], or fix the name",
                )
            )
    for index, agent in enumerate(manifest.agents):
        where = f"agents.{index}"
        if agent.plugin_id is not None and agent.plugin_id != manifest.id:
            problems.append(_other_plugin(f"{where}.plugin_id", agent.plugin_id, manifest.id))
        missing = [name for name in agent.default_tools if name not in tool_ids]
        if missing:
            problems.append(
                Problem(
                    f"{where}.default_tools",
                    f"{where}.default_tools: agent '{agent.id}' names unknown tool(s) "
                    f"{', '.join(map(repr, missing))}",
                    f"name tools declared under tools: {', '.join(tool_ids) or '(none)'}",
                )
            )
    return problems


def _how_it_runs(manifest: Manifest) -> list[Problem]:
    if manifest.runtime in RUNTIMES and manifest.entry is None:
        return [
            Problem(
                "entry",
                f"entry is required with runtime {manifest.runtime} (handler mode)",
                f"{FIXES['entry']}; or remove runtime and run backend.entry as a program",
            )
        ]
    if manifest.runtime == PROGRAM and manifest.entry is not None:
        return [
            Problem(
                "runtime",
                f"entry {manifest.entry!r} is a handler, but no runtime says which one",
                f"set runtime to one of: {', '.join(RUNTIMES)}; or remove entry and run "
                "backend.entry as a program",
            )
        ]
    if manifest.runtime == PROGRAM and manifest.backend is None:
        return [
            Problem(
                "backend",
                "nothing to run: no backend.entry (a program) and no runtime + entry (a handler)",
                "name the program as backend.entry, e.g. backend: {entry: backend/bin/plugin}; "
                "or set runtime and entry for handler mode",
            )
        ]
    return []


def _other_plugin(where: str, named: str, plugin_id: str) -> Problem:
    return Problem(
        where,
        f"{where}: bad value {named!r}: not this plugin's id ({plugin_id})",
        f"set it to '{plugin_id}' or leave it out",
    )
