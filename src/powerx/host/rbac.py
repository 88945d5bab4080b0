"""Who may call what: an identity's ``perms`` against a plugin's RBAC resources, checked the
way PowerX's host checks them before a request reaches a plugin.

PowerX's router (``internal/infra/plugin/manager/router/authz_gate.go``) works out the
permission a request needs from two things:

- the resource, lowercased and cut to what follows its last ``:`` (``note:note`` ->
  ``note``, as ``PolicyFromPlugin`` in ``manager/rbac.go`` keeps it);
- the action, from the method: GET/HEAD ``read``, POST ``create``, PUT/PATCH ``update``,
  DELETE ``delete``; when the resource does not declare that action, a synonym it does
  declare (``view``/``list``, ``write``, ``edit``, ``remove``).

The permission is held by perms naming ``resource:action``, ``resource:*`` or ``*``
(``hasPermission``; PowerXPluginBase's ``HasPerm`` compares them lowercased). A refusal is
a 403 whose ``reason`` reads ``permission required: note:create``.

The simulator applies this to the endpoints of a manifest's ``tools``: each names its
resource (``rbac_resource``), its ``method`` and its ``endpoint`` (the path the plugin
serves, ``/api/v1/notes``). The host API mock applies the same matching to the scope each
host API needs (``contacts:read``), for the identity of the request being served.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from powerx.config import Identity
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.manifest import Manifest, Tool

__all__ = [
    "DEFAULT_TOOL_METHOD",
    "ENDPOINT_PARAMETER",
    "Permission",
    "RbacDenial",
    "RbacGate",
    "has_permission",
    "tool_permission",
]

# A tool that names no method is called with POST (an agent sends its input as the body).
DEFAULT_TOOL_METHOD = "POST"

_ACTION_OF_METHOD = {
    "GET": "read",
    "HEAD": "read",
    "POST": "create",
    "PUT": "update",
    "PATCH": "update",
    "DELETE": "delete",
}
_SYNONYMS = {
    "GET": ("view", "list"),
    "HEAD": ("view", "list"),
    "POST": ("write", "create"),
    "PUT": ("edit", "update"),
    "PATCH": ("edit", "update"),
    "DELETE": ("remove", "delete"),
}
# A path parameter of a tool's endpoint, ``{id}`` or ``:id`` (gin's form): one segment.
ENDPOINT_PARAMETER = re.compile(r"\{(?P<brace>[^/{}]+)\}|:(?P<colon>[A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Permission:
    """``resource:action``, in the form a JWT's ``perms`` carries it."""

    resource: str
    action: str

    def __str__(self) -> str:
        return f"{self.resource}:{self.action}"

    @classmethod
    def of_scope(cls, scope: str) -> Permission:
        """``contacts:read`` -> resource ``contacts``, action ``read``."""
        resource, _, action = scope.strip().lower().rpartition(":")
        return cls(resource, action)


def has_permission(perms: Sequence[str], need: Permission) -> bool:
    """Whether ``perms`` grant ``need``: ``resource:action``, ``resource:*`` or ``*``."""
    wanted = {str(need), f"{need.resource}:*", "*"}
    return any(perm.strip().lower() in wanted for perm in perms)


def _short_resource(resource: str) -> str:
    return resource.strip().lower().rpartition(":")[2]


def tool_permission(manifest: Manifest, tool: Tool, method: str | None = None) -> Permission | None:
    """The permission a call of ``tool`` with ``method`` needs (None: the tool names no
    ``rbac_resource``, anyone may call it)."""
    if tool.rbac_resource is None:
        return None
    resource = _short_resource(tool.rbac_resource)
    verb = (method or tool.method or DEFAULT_TOOL_METHOD).upper()
    declared = {
        action.strip().lower()
        for item in manifest.rbac_resources
        if item.short_name == resource
        for action in item.actions
    }
    action = _ACTION_OF_METHOD.get(verb, verb.lower())
    if action not in declared:
        # PowerX falls back to a synonym the resource declares; with none, the plain
        # action is what is asked for (``note:*`` and ``*`` still grant it).
        action = next((alt for alt in _SYNONYMS.get(verb, ()) if alt in declared), action)
    return Permission(resource, action)


def _literal(text: str) -> str:
    return re.escape(text).replace(r"\*", "[^/]*")  # '*' as Go's path.Match reads it


def _endpoint_pattern(endpoint: str) -> re.Pattern[str]:
    """The paths ``endpoint`` stands for, with or without a trailing slash."""
    path = endpoint.split("?", 1)[0].rstrip("/") or "/"
    regex, done = "", 0
    for found in ENDPOINT_PARAMETER.finditer(path):
        regex += _literal(path[done : found.start()]) + "[^/]+"
        done = found.end()
    regex += _literal(path[done:])
    return re.compile(f"^{regex}/?$")


@dataclass(frozen=True)
class _ToolRoute:
    tool: Tool
    method: str | None  # None: any method
    pattern: re.Pattern[str]


def _tool_routes(manifest: Manifest) -> list[_ToolRoute]:
    return [
        _ToolRoute(tool, tool.method, _endpoint_pattern(tool.endpoint))
        for tool in manifest.tools
        if tool.rbac_resource is not None and tool.transport == "http"
    ]


@dataclass(frozen=True)
class RbacDenial:
    """A request refused because its identity lacks a permission (counted and audited)."""

    plugin: str
    identity: str
    permission: Permission
    what: str  # the tool or host API that needed it


class RbacGate:
    """Refuses a request to a tool's endpoint when the chosen identity's perms lack the
    tool's resource and action. A plugin's routes are worked out from its manifest the
    first time a request reaches it after a reload, never on the reload's own path."""

    def __init__(
        self,
        identities: Mapping[str, Identity],
        on_denied: Callable[[RbacDenial], None] | None = None,
    ) -> None:
        self.identities = identities
        self.on_denied = on_denied
        self._routes: dict[str, tuple[Manifest, list[_ToolRoute]]] = {}

    def _routes_of(self, manifest: Manifest) -> list[_ToolRoute]:
        cached = self._routes.get(manifest.id)
        if cached is None or cached[0] is not manifest:
            cached = (manifest, _tool_routes(manifest))
            self._routes[manifest.id] = cached
        return cached[1]

    def tool_at(self, manifest: Manifest, method: str, path: str) -> Tool | None:
        """The tool (with an ``rbac_resource``) whose endpoint ``method path`` is; ``path``
        as the plugin receives it (``/api/v1/notes``)."""
        for route in self._routes_of(manifest):
            if route.method in (None, method) and route.pattern.match(path):
                return route.tool
        return None

    def holders(self, need: Permission) -> list[str]:
        """The configured identities whose perms grant ``need``."""
        return sorted(
            name for name, who in self.identities.items() if has_permission(who.perms, need)
        )

    def check_request(
        self, manifest: Manifest, method: str, path: str, identity_name: str, identity: Identity
    ) -> None:
        """Refuse (403 ``rbac_denied``) a request to a tool's endpoint that ``identity``
        may not make; anything else passes."""
        if not manifest.tools:
            return
        tool = self.tool_at(manifest, method, path)
        if tool is None:
            return
        need = tool_permission(manifest, tool, method)
        if need is None or has_permission(identity.perms, need):
            return
        what = f"tool '{tool.id}' ({method} {path}, rbac_resource '{tool.rbac_resource}')"
        raise self.refuse(manifest.id, identity_name, identity, need, what, {"tool": tool.id})

    def refuse(
        self,
        plugin: str,
        identity_name: str,
        identity: Identity,
        need: Permission,
        what: str,
        details: Mapping[str, str] | None = None,
    ) -> PowerXError:
        """Report the denial and return the 403 that says what is missing and who has it."""
        if self.on_denied is not None:
            self.on_denied(RbacDenial(plugin, identity_name, need, what))
        holders = [name for name in self.holders(need) if name != identity_name]
        add = (
            f"add '{need}' (or '{need.resource}:*') to identities.{identity_name}.perms in "
            "host_simulator.yaml"
        )
        if holders:
            fix = (
                f"make the request as an identity that has it ({', '.join(holders)}): "
                f"`--as {holders[0]}`, or the header X-PowerX-Identity: {holders[0]}; or {add}."
            )
        else:
            fix = f"{add}; no configured identity has it."
        perms = ", ".join(identity.perms) or "none"
        return PowerXError(
            ErrorCode.RBAC_DENIED,
            f"Identity '{identity_name}' lacks permission '{need}', needed by {what} of "
            f"plugin {plugin}; its perms: {perms}.",
            fix,
            status=403,
            details={
                "plugin": plugin,
                "identity": identity_name,
                "permission": str(need),
                # PowerX's own gateway says it so: {"reason": "permission required: ..."}.
                "reason": f"permission required: {need}",
                **(details or {}),
            },
        )
