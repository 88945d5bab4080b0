"""The plugin manifest: model, loading and all-at-once validation.

Two files hold one: PowerX's own ``plugin.yaml`` (the first-class format, read as the real
host reads it, with the simulator's keys optional in it) and the older ``powerx.plugin.yaml``
(runtime, entry and host.api required). Both give the same :class:`Manifest`.
"""

from __future__ import annotations

import functools
import re
import shlex
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from powerx.error_codes import ErrorCode
from powerx.manifest_files import (
    MANIFEST_FILE,
    MANIFEST_FILES,
    MAX_MANIFEST_CHARS,
    PLUGIN_YAML,
    check_files,
    find_manifest,
    load_yaml_mapping,
)
from powerx.manifest_problems import PROGRAM, RUNTIMES, ManifestError, field_problem
from powerx.manifest_rules import (
    HOST_ONLY_KEYS,
    INTERNAL_FIELDS,
    cross_field_problems,
    prepare,
)
from powerx.manifest_sections import (
    Agent,
    Assets,
    Backend,
    Events,
    HostRuntime,
    Menu,
    RbacResource,
    Routes,
    Tool,
)
from powerx.versions import RangeSyntaxError, VersionRange

# Console scripts that run on a Python (the debugger can load in them too).
PYTHON_PROGRAMS = frozenset({"uvicorn", "gunicorn", "hypercorn", "fastapi", "flask"})

__all__ = [
    "MANIFEST_FILE",
    "MANIFEST_FILES",
    "MAX_MANIFEST_CHARS",
    "PLUGIN_YAML",
    "PROGRAM",
    "RUNTIMES",
    "Agent",
    "Backend",
    "Manifest",
    "ManifestError",
    "Menu",
    "RbacResource",
    "Routes",
    "Tool",
    "find_manifest",
    "load_manifest",
    "parse_manifest",
]

Runtime = Literal["python3.11", "node18", "program"]

_ID = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$")
# semver.org's recommended pattern, without the leading 'v'.
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_SCOPE = re.compile(r"^[a-z][a-z0-9-]*:[a-z][a-z0-9-]*$")
_HOSTNAME = re.compile(
    r"^(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?(:\d+)?$"
)

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def _is_loopback(host: str) -> bool:
    """A loopback name, or an IPv4 address on this machine (127.0.0.0/8, 0.0.0.0)."""
    octets = host.split(".")
    is_ipv4 = len(octets) == 4 and all(o.isdigit() and int(o) < 256 for o in octets)
    return host in _LOOPBACK_NAMES or (is_ipv4 and octets[0] in {"127", "0"})


class EsbuildSettings(BaseModel):
    """The subset of esbuild options a plugin may set; the rest are fixed by the host."""

    model_config = ConfigDict(extra="forbid")

    target: str = "node18"
    format: Literal["cjs", "esm"] = "cjs"
    sourcemap: bool = True
    minify: bool = False
    external: list[str] = Field(default_factory=list)


class BuildSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: str | None = None
    output: str | None = Field(default=None, description="File the command produces (node)")
    esbuild: EsbuildSettings | None = None


class HostRequirement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api: str

    @field_validator("api")
    @classmethod
    def _api_is_a_range(cls, value: str) -> str:
        try:
            VersionRange.parse(value)
        except RangeSyntaxError as exc:
            # The reason quotes the text; pydantic cannot carry a lone surrogate (YAML's
            # "\ud800") in a message, so it is escaped.
            reason = str(exc).encode("utf-8", "backslashreplace").decode()
            raise ValueError(f"not a version range ({reason})") from exc
        return value

    @property
    def range(self) -> VersionRange:
        return VersionRange.parse(self.api)


class Manifest(BaseModel):
    """A validated manifest, from ``plugin.yaml`` or ``powerx.plugin.yaml``.

    ``runtime`` says how the plugin runs: ``python3.11`` / ``node18`` serve the handler
    named by ``entry`` in the simulator's own runtime (the fast path); ``program`` runs the
    program ``backend.entry`` as PowerX does (the default in ``plugin.yaml`` when there is
    no ``entry``). ``host`` absent: any host API version is accepted.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str = Field(min_length=1)
    version: str
    description: str = ""
    runtime: Runtime = PROGRAM
    entry: str | None = Field(default=None, min_length=1)
    host: HostRequirement | None = None
    permissions: list[str] = Field(
        default_factory=list,
        description="Scopes: the plugin's host API scopes, plus 'resource:action' for each "
        "action of each resource it declares ({resource, actions} items are kept in "
        "rbac_resources)",
    )
    build: BuildSettings | None = None
    egress: list[str] = Field(default_factory=list)
    backend: Backend | None = None
    routes: Routes | None = None
    rbac_resources: list[RbacResource] = Field(default_factory=list)
    menus: list[Menu] = Field(default_factory=list)
    assets: Assets | None = None
    agents: list[Agent] = Field(default_factory=list)
    tools: list[Tool] = Field(default_factory=list)
    events: Events | None = None
    host_runtime: HostRuntime | None = Field(
        default=None, description="PowerX's own runtime mapping ({kind: process, entry, ...})"
    )
    author: str | None = None
    homepage: str | None = None
    repository: str | None = None
    license: str | None = None
    tags: list[str] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _reverse_dns(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(
                "must be reverse-DNS (lowercase, dot-separated, e.g. com.example.hello)"
            )
        return value

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        if not _SEMVER.match(value):
            raise ValueError("must be SemVer MAJOR.MINOR.PATCH")
        return value

    @field_validator("permissions")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        bad = [scope for scope in value if not _SCOPE.match(scope)]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))} not of the form 'area:action'")
        return value

    @field_validator("egress")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        hosts = [host.lower() for host in value]
        bad = [host for host in hosts if not _HOSTNAME.match(host)]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))} not a host name")
        ports = [
            host for host in hosts if ":" in host and not 0 < int(host.rpartition(":")[2]) < 65536
        ]
        if ports:
            raise ValueError(f"{', '.join(map(repr, ports))}: a port is 1 to 65535")
        # Without a port, a loopback entry would open every local port (the simulator's
        # debug ports included).
        loopback = [host for host in hosts if ":" not in host and _is_loopback(host)]
        if loopback:
            raise ValueError(f"{', '.join(map(repr, loopback))} needs a port (localhost:8080)")
        return hosts

    @model_validator(mode="after")
    def _derive(self) -> Manifest:
        """PowerX's runtime mapping names the backend; declared resources grant scopes
        (idempotent: a manifest validated twice keeps one copy of each)."""
        if self.backend is None and self.host_runtime is not None:
            health = self.host_runtime.health.http or "/healthz"
            self.backend = Backend(entry=self.host_runtime.entry, health=health)
        for scope in self.resource_scopes:
            if scope not in self.permissions:
                self.permissions.append(scope)
        return self

    @property
    def resource_scopes(self) -> list[str]:
        """``resource:action`` for every declared resource, as a JWT's ``perms`` carries it.

        ``{resource: contacts, actions: [read]}`` gives ``contacts:read``. A resource with a
        colon keeps what follows the last one: ``{resource: note:note, actions: [read]}``
        gives ``note:read``, because that is the name PowerX's router checks perms against
        (``PolicyFromPlugin`` keeps the part after the last ':'), and PowerXPluginBase's own
        routes ask for ``{Resource: note, Action: read}``. Both are lowercased, as the host
        and the plugin's ``HasPerm`` compare them."""
        return [scope for resource in self.rbac_resources for scope in resource.scopes]

    @property
    def is_backend(self) -> bool:
        """Runs as a program (``backend.entry``), not as a handler (``entry``)."""
        return self.backend is not None and self.entry is None

    @property
    def serving_path(self) -> str:
        """Where the simulator serves the plugin: PowerX's ``/_p/<id>/api/v1/`` for a
        program, the simulator's ``/plugins/<id>/`` for a handler."""
        return f"/_p/{self.id}/api/v1/" if self.is_backend else f"/plugins/{self.id}/"

    @property
    def debug_runtime(self) -> str:
        """The runtime whose debugger fits this plugin's code: a handler's own; for a
        program, ``python3.11`` when ``backend.entry`` starts a Python and ``node18`` when it
        starts a Node (the debugger loads in it at start-up, through
        ``python_child/sitecustomize.py`` or ``egress_preload.js``), else ``program``."""
        if not self.is_backend:
            return self.runtime
        assert self.backend is not None
        words = shlex.split(self.backend.entry) or [""]
        program = Path(words[0]).name
        if program.startswith("python") or program in PYTHON_PROGRAMS or program.endswith(".py"):
            return "python3.11"
        if program == "node" or program.endswith((".js", ".mjs", ".cjs")):
            return "node18"
        return self.runtime

    @property
    def handler_entry(self) -> str:
        """``entry``, for code that serves a handler; a backend plugin has none."""
        if self.entry is None:
            raise ManifestError(
                ErrorCode.MANIFEST_NOT_HANDLER,
                f"{self.id} runs a program (backend.entry), not a handler: it has no entry.",
                "set runtime and entry to serve a handler, or run it as a backend plugin.",
                status=422,
            )
        return self.entry

    @property
    def entry_file(self) -> str:
        """The entry's file part (``app.py:app`` -> ``app.py``)."""
        entry = self.handler_entry
        return entry.split(":", 1)[0] if self.runtime == "python3.11" else entry

    @property
    def entry_attribute(self) -> str:
        """The ASGI attribute of a Python entry (``app`` unless ``file.py:attr``)."""
        _, _, attr = (self.entry or "").partition(":")
        return attr or "app"

    @property
    def needs_esbuild(self) -> bool:
        if self.runtime != "node18" or self.entry is None:
            return False
        if self.build and self.build.command:
            return False
        return bool(self.build and self.build.esbuild) or self.entry.endswith(
            (".ts", ".tsx", ".mts")
        )


def is_plugin_yaml(source: str) -> bool:
    """Whether ``source`` names PowerX's own ``plugin.yaml`` (read by its rules)."""
    return Path(source).name == PLUGIN_YAML


def parse_manifest(text: str, source: str = MANIFEST_FILE) -> Manifest:
    """Parse manifest text; raise :class:`ManifestError` listing every problem at once.

    ``source`` names the file: ``plugin.yaml`` is read by PowerX's rules (the simulator's
    keys optional, keys the real host knows accepted), anything else as the older
    ``powerx.plugin.yaml``.

    Every hot reload parses the same manifest twice (the build, then the simulator's
    admission) and YAML costs ~0.5 ms each time, so good manifests are remembered by text;
    each caller gets its own copy."""
    return _parse_remembered(text, source).model_copy(deep=True)


@functools.lru_cache(maxsize=64)
def _parse_remembered(text: str, source: str) -> Manifest:  # errors are not cached
    raw = load_yaml_mapping(text, source)
    prepared, moved, problems = prepare(raw, plugin_yaml=is_plugin_yaml(source))
    try:
        manifest = Manifest.model_validate(prepared)
    except ValidationError as exc:
        known = [name for name in Manifest.model_fields if name not in INTERNAL_FIELDS]
        problems += [field_problem(e, known, moved) for e in exc.errors()]
    else:
        if not problems:  # a missing key or a typo would explain most of these
            problems += cross_field_problems(manifest)
    if problems:
        raise ManifestError(
            ErrorCode.MANIFEST_INVALID,
            f"{source}: {len(problems)} problem(s) in the manifest.",
            "fix each field listed below.",
            problems=problems,
        )
    return manifest


def load_manifest(plugin_dir: Path) -> Manifest:
    """Load and check a plugin folder's manifest, including that its entry file exists."""
    path = find_manifest(plugin_dir)
    manifest = parse_manifest(path.read_text(encoding="utf-8"), str(path))
    problems = check_files(manifest, plugin_dir)
    if problems:
        raise ManifestError(
            ErrorCode.MANIFEST_INVALID,
            f"{path}: {len(problems)} problem(s) in the manifest.",
            "fix each field listed below.",
            problems=problems,
        )
    return manifest


def json_schema() -> dict[str, Any]:
    """The JSON Schema of both manifest files (written to ``schemas/`` by ``make schemas``).

    It describes the file as written: ``permissions`` items are scopes or
    ``{resource, actions}``, ``runtime`` is the simulator's name or PowerX's mapping, and
    keys PowerX's host knows are allowed (``plugin.yaml`` accepts them; the older
    ``powerx.plugin.yaml`` does not, and requires runtime, entry and host)."""
    schema = Manifest.model_json_schema()
    properties = schema["properties"]
    resource = {"$ref": "#/$defs/RbacResource"}
    properties["permissions"]["items"] = {"anyOf": [{"type": "string"}, resource]}
    properties["runtime"] = {
        "anyOf": [
            {k: v for k, v in properties["runtime"].items() if k != "default"},
            {"$ref": "#/$defs/HostRuntime"},
        ],
        "description": "python3.11 | node18 (a handler named by entry), program (backend.entry), "
        "or PowerX's {kind: process, entry, ...}; default: program",
    }
    del properties["rbac_resources"], properties["host_runtime"]
    for key in sorted(HOST_ONLY_KEYS):
        properties[key] = {"description": "read by PowerX's host; accepted as it is"}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://powerx.dev/schemas/powerx.plugin.schema.json"
    schema["title"] = "PowerX plugin manifest (plugin.yaml, or the older powerx.plugin.yaml)"
    return schema
