"""The sections of PowerX's own ``plugin.yaml``: backend, routes, permissions, menus, assets,
agents, tools, events, and the host's ``runtime`` mapping.

Field names and shapes follow PowerXPluginBase's ``plugin.yaml`` and the Go structs that read
it (PowerXPluginBase ``backend/internal/contracts/manifest.go``, PowerX
``backend/pkg/plugin_mgr``). Go's YAML reader ignores keys it does not know, so every section
here keeps unknown keys (``extra="allow"``) instead of refusing a plugin the real host runs.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

# A resource is 'note', 'note:note' (PowerXPluginBase) or 'hello.report' (PowerX's docs).
_RESOURCE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]*$")
_ACTION = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*|\*)$")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def _url_path(value: str | None) -> str | None:
    if value is not None and not value.startswith("/"):
        raise ValueError("must be a URL path starting with '/'")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="allow")


class Backend(_Section):
    """``backend``: the program the host starts, the port it prefers, its health path."""

    entry: str = Field(min_length=1, description="Program the host runs, e.g. backend/bin/plugin")
    port: int | None = Field(default=None, ge=1, le=65535)
    health: str = "/healthz"

    @field_validator("health")
    @classmethod
    def _health_is_a_path(cls, value: str) -> str:
        _url_path(value)
        return value


class Routes(_Section):
    """``routes``: the plugin's own API prefix and its admin manifest / RBAC endpoints."""

    basePath: str | None = None  # PowerX spells these in camelCase
    adminManifest: str | None = None
    rbac: str | None = None

    @field_validator("basePath", "adminManifest", "rbac")
    @classmethod
    def _paths(cls, value: str | None) -> str | None:
        return _url_path(value)


class RbacResource(_Section):
    """One ``permissions`` item: a resource the plugin defines and the actions on it."""

    resource: str
    actions: list[str] = Field(min_length=1)
    description: str | None = None

    @field_validator("resource")
    @classmethod
    def _resource_name(cls, value: str) -> str:
        if not _RESOURCE.match(value):
            raise ValueError("must be a name such as 'note' or 'note:note'")
        return value

    @field_validator("actions")
    @classmethod
    def _action_names(cls, value: list[str]) -> list[str]:
        bad = [action for action in value if not _ACTION.match(action)]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))} not an action name such as 'read'")
        return value

    @property
    def short_name(self) -> str:
        """The name the host checks perms against: ``note:note`` -> ``note``.

        PowerX's router (``manager/rbac.go``, PolicyFromPlugin) lowercases the resource and
        keeps what follows its last colon; PowerXPluginBase's own routes then ask for
        ``note:read``, and the JWT's ``perms`` carry ``note:read``."""
        return self.resource.strip().lower().rpartition(":")[2]

    @property
    def scopes(self) -> list[str]:
        """``resource:action`` for each action, in the form a JWT's ``perms`` carries."""
        return [f"{self.short_name}:{action.strip().lower()}" for action in self.actions]


class Menu(_Section):
    """``menus`` item (children nest)."""

    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    icon: str | None = None
    path: str | None = None
    order: int = 0
    children: list[Menu] = Field(default_factory=list)


class Assets(_Section):
    webAdminPath: str | None = None


class Agent(_Section):
    id: str = Field(min_length=1)
    plugin_id: str | None = None
    name: str = Field(min_length=1)
    description: str = ""
    default_tools: list[str] = Field(default_factory=list)


def _check_json_schema(value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
    """A tool's schema must itself be a valid JSON Schema (checked against its metaschema, the
    one ``$schema`` names, else the newest draft): a broken schema would otherwise only show
    when the first call is validated against it."""
    if value is None:
        return None
    tool = info.data.get("id") or "?"
    try:
        jsonschema.validators.validator_for(value).check_schema(value)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "the top level"
        raise ValueError(
            f"tool '{tool}': not a valid JSON Schema at {where} ({exc.message[:120]})"
        ) from None
    return value


class Tool(_Section):
    """``tools`` item: an endpoint of the plugin that agents and ``powerx tools`` call."""

    id: str = Field(min_length=1)
    plugin_id: str | None = None
    name: str = Field(min_length=1)
    description: str = ""
    transport: Literal["http", "grpc"] = "http"
    endpoint: str = Field(min_length=1)
    method: str | None = None
    rbac_resource: str | None = None
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None

    @field_validator("method")
    @classmethod
    def _http_method(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.upper() not in HTTP_METHODS:
            raise ValueError(f"not an HTTP method ({', '.join(HTTP_METHODS)})")
        return value.upper()

    @field_validator("input_schema", "output_schema")
    @classmethod
    def _schemas(cls, value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        return _check_json_schema(value, info)


class EventTopic(_Section):
    name: str = Field(min_length=1)
    description: str | None = None


class Events(_Section):
    """``events``: ``topics`` (PowerX's docs) or ``publish``/``subscribe`` (PowerX's struct)."""

    topics: list[str | EventTopic] = Field(default_factory=list)
    publish: list[str] = Field(default_factory=list)
    subscribe: list[str] = Field(default_factory=list)


class RuntimeHealth(_Section):
    http: str | None = None
    interval: str | None = None
    timeout: str | None = None


class HostRuntime(_Section):
    """PowerX's own ``runtime`` mapping (``plugin_mgr.RuntimeSpec``): the host starts
    ``entry`` as a process. Only ``process`` runs in the simulator."""

    kind: Literal["process"]
    entry: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    health: RuntimeHealth = Field(default_factory=RuntimeHealth)
