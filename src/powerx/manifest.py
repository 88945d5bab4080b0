"""The plugin manifest ``powerx.plugin.yaml``: model, loading and all-at-once validation."""

from __future__ import annotations

import difflib
import functools
import re
import reprlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from powerx.errors import PowerXError, Problem
from powerx.versions import RangeSyntaxError, VersionRange

MANIFEST_FILE = "powerx.plugin.yaml"
RUNTIMES = ("python3.11", "node18")
# A manifest is a few hundred bytes; the YAML loader is pure Python (about 5 s per MiB of
# keys), and admission runs on the simulator's event loop.
MAX_MANIFEST_CHARS = 64 * 1024
Runtime = Literal["python3.11", "node18"]

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


_FIXES = {
    "id": "use a reverse-DNS id such as 'com.example.hello'",
    "name": "give the plugin a human-readable name, e.g. 'Hello'",
    "version": "use a SemVer version such as '1.0.0'",
    "runtime": f"set runtime to one of: {', '.join(RUNTIMES)}",
    "entry": "point entry at the plugin's main file, e.g. 'app.py:app' or 'src/index.ts'",
    "host": "declare the host API range, e.g. host: {api: '>=2.3 <3'}",
    "host.api": "declare a range such as '>=2.3 <3', '^2.3', '~2.4' or '2.4'",
    "permissions": "list host API scopes such as 'contacts:read'",
    "egress": "list host names the plugin may call, e.g. 'api.example.com' or "
    "'localhost:8080' (a local service needs its port)",
    "build": "use build: {command: ..., output: ...} or build: {esbuild: {...}}",
}


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
    """A validated ``powerx.plugin.yaml``."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str = Field(min_length=1)
    version: str
    runtime: Runtime
    entry: str = Field(min_length=1)
    host: HostRequirement
    permissions: list[str] = Field(default_factory=list)
    build: BuildSettings | None = None
    egress: list[str] = Field(default_factory=list)

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

    @property
    def entry_file(self) -> str:
        """The entry's file part (``app.py:app`` -> ``app.py``)."""
        return self.entry.split(":", 1)[0] if self.runtime == "python3.11" else self.entry

    @property
    def entry_attribute(self) -> str:
        """The ASGI attribute of a Python entry (``app`` unless ``file.py:attr``)."""
        _, _, attr = self.entry.partition(":")
        return attr or "app"

    @property
    def needs_esbuild(self) -> bool:
        if self.runtime != "node18":
            return False
        if self.build and self.build.command:
            return False
        return bool(self.build and self.build.esbuild) or self.entry.endswith(
            (".ts", ".tsx", ".mts")
        )


class ManifestError(PowerXError):
    """The manifest is missing, unreadable or invalid; ``problems`` lists every issue."""


# A bounded repr: a YAML alias bomb is one list shared a billion times, and a plain repr
# would print every copy.
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 60, 60


def _describe(value: Any) -> str:
    try:
        text = _SHORT.repr(value)
    except ValueError:  # an int with more digits than Python will print (YAML hex allows it)
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _field_problem(error: dict[str, Any], raw: dict[str, Any]) -> Problem:
    loc = ".".join(str(p) for p in error["loc"])
    top = str(error["loc"][0]) if error["loc"] else ""
    kind = error["type"]
    if kind == "extra_forbidden":
        known = [*list(Manifest.model_fields), "host.api"]
        guess = difflib.get_close_matches(str(error["loc"][-1]), known, n=1)
        fix = (
            f"did you mean '{guess[0]}'?"
            if guess
            else f"remove it; known fields: {', '.join(Manifest.model_fields)}"
        )
        return Problem(loc, f"unknown field '{loc}'", fix)
    if kind == "missing":
        return Problem(loc, f"required field '{loc}' is missing", _FIXES.get(loc, _FIXES.get(top)))
    reason = str(error["msg"]).removeprefix("Value error, ")
    if kind == "literal_error" and top == "runtime":
        reason = "unknown runtime"
    value = error.get("input")
    return Problem(
        loc, f"{loc}: bad value {_describe(value)}: {reason}", _FIXES.get(loc, _FIXES.get(top))
    )


def parse_manifest(text: str, source: str = MANIFEST_FILE) -> Manifest:
    """Parse manifest text; raise :class:`ManifestError` listing every problem at once.

    Every hot reload parses the same manifest twice (the build, then the simulator's
    admission) and YAML costs ~0.5 ms each time, so good manifests are remembered by text;
    each caller gets its own copy."""
    return _parse_remembered(text, source).model_copy(deep=True)


@functools.lru_cache(maxsize=64)
def _parse_remembered(text: str, source: str) -> Manifest:  # errors are not cached
    if len(text) > MAX_MANIFEST_CHARS:
        raise ManifestError(
            "manifest_too_large",
            f"{source}: the manifest is {len(text)} characters; the cap is {MAX_MANIFEST_CHARS}.",
            "a manifest is a short mapping of fields; see examples/hello-python.",
            status=413,
        )
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ManifestError(
            "manifest_yaml",
            f"{where}: the manifest is not valid YAML ({problem}).",
            "fix the YAML syntax at that line (indentation, quotes, a missing ':').",
        ) from None
    # Not every failure of the loader is a YAMLError: it recurses once per nesting level,
    # int() refuses more than 4300 digits, and an explicit tag on a value it does not fit
    # (`!!bool x`, `!!timestamp x`, `!!int ""`) raises KeyError, AttributeError, IndexError.
    except Exception as exc:
        reason = (
            "nested too deeply"
            if isinstance(exc, RecursionError)
            else "a value the YAML loader cannot build"
        )
        raise ManifestError(
            "manifest_yaml",
            f"{source}: the manifest is not valid YAML ({reason}).",
            "a manifest is a flat mapping of short fields; see examples/hello-python.",
        ) from None
    if not isinstance(raw, dict):
        raise ManifestError(
            "manifest_invalid",
            f"{source}: the manifest must be a mapping of fields, got {type(raw).__name__}.",
            "start from the example: id, name, version, runtime, entry, host.api, permissions.",
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        problems = [_field_problem(dict(e), raw) for e in exc.errors()]
        raise ManifestError(
            "manifest_invalid",
            f"{source}: {len(problems)} problem(s) in the manifest.",
            "fix each field listed below.",
            problems=problems,
        ) from None


def load_manifest(plugin_dir: Path) -> Manifest:
    """Load and check a plugin folder's manifest, including that its entry file exists."""
    path = plugin_dir / MANIFEST_FILE
    if not plugin_dir.is_dir():
        raise ManifestError(
            "plugin_not_found",
            f"{plugin_dir}: no such plugin folder.",
            "pass the folder that holds powerx.plugin.yaml.",
        )
    if not path.is_file():
        raise ManifestError(
            "manifest_missing",
            f"{plugin_dir}: no {MANIFEST_FILE} in this folder.",
            f"create {MANIFEST_FILE} (see examples/hello-python) or pass the plugin's folder.",
        )
    manifest = parse_manifest(path.read_text(encoding="utf-8"), str(path))
    problems = check_files(manifest, plugin_dir)
    if problems:
        raise ManifestError(
            "manifest_invalid",
            f"{path}: {len(problems)} problem(s) in the manifest.",
            "fix each field listed below.",
            problems=problems,
        )
    return manifest


def check_files(manifest: Manifest, plugin_dir: Path) -> list[Problem]:
    """Problems the model cannot see: files that must exist inside the plugin folder."""
    problems: list[Problem] = []
    entry = Path(manifest.entry_file)
    root = plugin_dir.resolve()
    target = (plugin_dir / entry).resolve()
    if entry.is_absolute() or not target.is_relative_to(root):
        problems.append(
            Problem(
                "entry",
                f"entry: bad value {manifest.entry!r}: must stay inside the plugin folder",
                "use a path relative to the plugin folder",
            )
        )
    elif not target.is_file():
        problems.append(
            Problem(
                "entry",
                f"entry: bad value {manifest.entry!r}: file {entry} does not exist",
                _FIXES["entry"],
            )
        )
    if manifest.runtime == "python3.11" and not manifest.entry_file.endswith(".py"):
        problems.append(
            Problem(
                "entry",
                f"entry: bad value {manifest.entry!r}: a python3.11 entry is a .py file",
                "use e.g. 'app.py:app'",
            )
        )
    if manifest.runtime == "node18" and not manifest.entry.endswith(
        (".js", ".cjs", ".mjs", ".ts", ".tsx", ".mts")
    ):
        problems.append(
            Problem(
                "entry",
                f"entry: bad value {manifest.entry!r}: a node18 entry is a .js or .ts file",
                "use e.g. 'src/index.ts'",
            )
        )
    if manifest.build and manifest.build.command and not manifest.build.output:
        problems.append(
            Problem(
                "build.output",
                "build.output is required with build.command",
                "name the file the command writes, e.g. 'dist/index.js'",
            )
        )
    return problems


def json_schema() -> dict[str, Any]:
    """The manifest's JSON Schema (written to ``schemas/`` by ``make schemas``)."""
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://powerx.dev/schemas/powerx.plugin.schema.json"
    schema["title"] = "PowerX plugin manifest (powerx.plugin.yaml)"
    return schema
