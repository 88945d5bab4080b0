"""The simulator's configuration: one pydantic model, loaded from YAML, then env overrides.

Lookup of the file: ``--config PATH``, else ``$POWERX_CONFIG``, else
``./config/plugins/debug/host_simulator.yaml`` when present, else the built-in defaults
(which equal the shipped file; a test keeps the two in step).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError, validation_problems
from powerx.images import DEFAULT_IMAGE, IMAGES

DEFAULT_CONFIG_PATH = Path("config/plugins/debug/host_simulator.yaml")
SIMULATOR_FLAG = "PX_PLUGIN_HOST_SIMULATOR"
OBSERVABILITY_FLAG = "debug-observability-v2"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class Ports(BaseModel):
    model_config = ConfigDict(extra="forbid")

    http: int = Field(default=8787, ge=0, le=65535)


class PermissionPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["enforce", "warn"] = "enforce"
    deny: list[str] = Field(default_factory=list)


class AlertRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    failure_rate: float = Field(default=0.05, ge=0, le=1)
    failure_window_s: float = Field(default=300.0, gt=0)
    failure_min_reloads: int = Field(default=5, ge=1)
    mismatch_count: int = Field(default=3, ge=1)
    mismatch_window_s: float = Field(default=600.0, gt=0)


class Observability(BaseModel):
    model_config = ConfigDict(extra="forbid")

    otlp_endpoint: str | None = None
    webhook_url: str | None = None
    log_buffer: int = Field(default=5000, ge=100)
    # Requests to plugins kept in memory for the request inspector (`powerx requests`).
    request_buffer: int = Field(default=500, ge=10, le=100_000)
    # /metrics names plugins, tenants and failure reasons: it needs the credential (or
    # the dashboard cookie) unless this opens it, e.g. for a scraper without a token.
    metrics_open: bool = False
    alerts: AlertRules = Field(default_factory=AlertRules)


class Identity(BaseModel):
    """Who a request to a plugin is made as: signed into it as PowerX's host does
    (``tid``, ``uid``, ``roles``, ``perms``, ``policy_version``; host/identity.py)."""

    model_config = ConfigDict(extra="forbid")

    # The host API mock's tenant for this identity; unset: the config's ``tenant``.
    tenant: str | None = None
    tenant_id: int = Field(default=1, ge=0)
    user_id: int = Field(default=1, ge=0)
    roles: list[str] = Field(default_factory=list)
    perms: list[str] = Field(default_factory=list)
    policy_version: str = "1"


def _default_identities() -> dict[str, Identity]:
    return {"developer": Identity(roles=["admin"], perms=["*"])}


class ContextSigning(BaseModel):
    """How the signed tenant context is made (PowerX's host values; the secret is made
    fresh per run and handed to each plugin in its environment)."""

    model_config = ConfigDict(extra="forbid")

    issuer: str = "powerx"
    ttl_s: int = Field(default=300, ge=1)


class DevHotload(BaseModel):
    """PowerX's dev hot-load protocol (``px-plugin dev --dev-api``, host/routes/dev.py)."""

    model_config = ConfigDict(extra="forbid")

    # How long a registered session's reload token works (PowerX's default: 15 minutes).
    session_ttl_s: float = Field(default=900.0, gt=0)


class Tuning(BaseModel):
    """How long the simulator's lifecycle waits, retries and probes. The defaults are what
    a developer wants (and, where PowerX's own host has a value, PowerX's); a test or a
    slow machine sets shorter or longer ones in the config file's ``tuning:`` section."""

    model_config = ConfigDict(extra="forbid")

    after_flip_wait_s: float = Field(
        default=0.2,
        gt=0,
        description="After a flip, the work that can wait (the rest of the reload, the next "
        "warm spare, stopping the previous generation) waits for the new generation's first "
        "answer, or this long when none comes.",
    )
    artefacts_kept: int = Field(
        default=100,
        ge=10,
        description="Stored artefacts kept for `host rollback --to` (the newest ones); after "
        "a reload older ones go, except what serves, served just before or is starting. "
        "`host cache clear` removes every unused one at once.",
    )
    stop_grace_s: float = Field(
        default=3.0,
        gt=0,
        description="A handler generation asked to stop gets SIGTERM, then SIGKILL this "
        "much later.",
    )
    program_stop_grace_s: float = Field(
        default=5.0,
        gt=0,
        description="The same for a backend program (PowerX's supervisor: 5 s).",
    )
    drain_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="How long a replaced generation may finish its in-flight requests.",
    )
    crash_window_s: float = Field(
        default=60.0,
        gt=0,
        description="Five crashes within this window make a crash loop: no more restarts.",
    )
    crash_backoff_first_s: float = Field(
        default=0.1,
        ge=0,
        description="A crashed handler generation restarts after this, doubling per crash.",
    )
    crash_backoff_max_s: float = Field(
        default=5.0, ge=0, description="The longest wait before a handler's restart."
    )
    program_backoff_first_s: float = Field(
        default=1.0,
        ge=0,
        description="A crashed backend program restarts after this, doubling per crash "
        "(PowerX's supervisor: 1 s).",
    )
    program_backoff_max_s: float = Field(
        default=10.0,
        ge=0,
        description="The longest wait before a program's restart (PowerX's: 10 s).",
    )
    probe_timeout_s: float = Field(
        default=1.0,
        gt=0,
        description="One health probe of a backend program (PowerX's per-probe timeout).",
    )
    liveness_interval_s: float = Field(
        default=2.0,
        gt=0,
        description="A running backend program's health path is probed this often (PowerX's: 2 s).",
    )
    liveness_failures: int = Field(
        default=5,
        ge=1,
        description="This many failed probes in a row and the program is taken for hung "
        "and restarted (PowerX's: 5).",
    )
    reload_max_hold_s: float = Field(
        default=3.0,
        gt=0,
        description="The longest a request waits at the reload gate for a reload of its "
        "plugin: long enough for a normal start (heavy imports take ~1 s), short enough "
        "that a stuck one is noticed; the previous generation then answers.",
    )
    mock_data_step_ms: int = Field(
        default=20,
        ge=1,
        description="How often the mock data watcher looks for the end of an edit.",
    )
    mock_data_debounce_ms: int = Field(
        default=200,
        ge=1,
        description="How long the mock data files must stay unchanged before an edit is "
        "applied (edits are not latency-critical: a person saves, then makes a request).",
    )


class SimulatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str = DEFAULT_IMAGE
    bind: str = "127.0.0.1"
    ports: Ports = Field(default_factory=Ports)
    tenant: str = "acme"
    identity: str = "developer"
    identities: dict[str, Identity] = Field(default_factory=_default_identities)
    context_signing: ContextSigning = Field(default_factory=ContextSigning)
    permission_policy: PermissionPolicy = Field(default_factory=PermissionPolicy)
    production_hosts: list[str] = Field(
        default_factory=lambda: ["api.powerx.io", "*.powerx.io", "*.powerx.cloud"]
    )
    flags: dict[str, bool] = Field(
        default_factory=lambda: {SIMULATOR_FLAG: True, OBSERVABILITY_FLAG: True}
    )
    plugin_start_timeout_s: float = Field(default=15.0, gt=0)
    # OS containment of plugin processes (host/sandbox.py): "auto" contains them where
    # bubblewrap can and says "not contained" elsewhere; "required" refuses to start a
    # plugin uncontained; "off" runs them with the in-process guards only.
    sandbox: Literal["auto", "required", "off"] = "auto"
    # A client has this long from connecting (or from the first byte of a later request)
    # to send a request's headers; then it gets 408 and the connection is closed.
    header_timeout_s: float = Field(default=10.0, gt=0)
    observability: Observability = Field(default_factory=Observability)
    dev_hotload: DevHotload = Field(default_factory=DevHotload)
    tuning: Tuning = Field(default_factory=Tuning)

    @field_validator("image")
    @classmethod
    def _known_image(cls, value: str) -> str:
        full = value if value in IMAGES else f"powerx/host-simulator:{value}"
        if full not in IMAGES:
            raise ValueError(f"unknown image; available: {', '.join(IMAGES)}")
        return full

    @model_validator(mode="after")
    def _identity_defined(self) -> SimulatorConfig:
        if self.identity not in self.identities:
            known = ", ".join(sorted(self.identities)) or "none"
            raise ValueError(f"identity '{self.identity}' is not in identities (defined: {known})")
        return self

    def flag(self, name: str) -> bool:
        return self.flags.get(name, False)


def flag_env_name(flag: str) -> str:
    """``debug-observability-v2`` -> ``POWERX_FLAG_DEBUG_OBSERVABILITY_V2``; PX_* kept as is."""
    name = flag.upper().replace("-", "_")
    return name if name.startswith("PX_") else f"POWERX_FLAG_{name}"


def _env_bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise PowerXError(
        ErrorCode.CONFIG_INVALID,
        f"Environment variable {name}={raw!r} is not a boolean.",
        f"set {name} to 1 or 0 (true/false, on/off also work).",
    )


def _apply_env(data: dict[str, object], env: Mapping[str, str]) -> None:
    simple = {
        "POWERX_IMAGE": "image",
        "POWERX_BIND": "bind",
        "POWERX_TENANT": "tenant",
        "POWERX_IDENTITY": "identity",
        "POWERX_SANDBOX": "sandbox",
    }
    for var, key in simple.items():
        if env.get(var):
            data[key] = env[var]
    if env.get("POWERX_HTTP_PORT"):
        ports = dict(data.get("ports") or {})  # type: ignore[call-overload]
        ports["http"] = env["POWERX_HTTP_PORT"]
        data["ports"] = ports
    if env.get("POWERX_DEV_SESSION_TTL_S"):
        dev = dict(data.get("dev_hotload") or {})  # type: ignore[call-overload]
        dev["session_ttl_s"] = env["POWERX_DEV_SESSION_TTL_S"]
        data["dev_hotload"] = dev
    flags = dict(data.get("flags") or {})  # type: ignore[call-overload]
    for flag in set(flags) | {SIMULATOR_FLAG, OBSERVABILITY_FLAG}:
        var = flag_env_name(flag)
        if var in env:
            flags[flag] = _env_bool(var, env[var])
    if flags:
        data["flags"] = flags


def resolve_config_path(explicit: Path | None, env: Mapping[str, str]) -> Path | None:
    if explicit is not None:
        return explicit
    if env.get("POWERX_CONFIG"):
        return Path(env["POWERX_CONFIG"])
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> SimulatorConfig:
    """Defaults, then the YAML file, then environment overrides."""
    env = os.environ if env is None else env
    source = resolve_config_path(path, env)
    data: dict[str, object] = {}
    if source is not None:
        if not source.is_file():
            raise PowerXError(
                ErrorCode.CONFIG_MISSING,
                f"Config file {source} does not exist.",
                "pass an existing file with --config, or unset POWERX_CONFIG.",
            )
        try:
            loaded = yaml.safe_load(source.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{source}:{mark.line + 1}" if mark else str(source)
            raise PowerXError(
                ErrorCode.CONFIG_YAML,
                f"{where}: the config is not valid YAML.",
                "fix the YAML syntax at that line.",
            ) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise PowerXError(
                ErrorCode.CONFIG_INVALID,
                f"{source}: the config must be a mapping.",
                "see config/plugins/debug/host_simulator.yaml for the layout.",
            )
        data = dict(loaded or {})
    _apply_env(data, env)
    try:
        return SimulatorConfig.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, whole="config")
        raise PowerXError(
            ErrorCode.CONFIG_INVALID,
            f"{source or 'environment'}: {len(problems)} problem(s) in the simulator config.",
            "fix each key listed below "
            "(env overrides: POWERX_IMAGE, POWERX_BIND, POWERX_HTTP_PORT).",
            problems=problems,
        ) from None
