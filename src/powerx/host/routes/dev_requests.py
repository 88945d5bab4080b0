"""What requests of PowerX's dev protocol carry and who may send them (the endpoints are
host/routes/dev.py and host/routes/local_install.py): the bodies px-plugin and PowerX's
local-install client send, read field by field before anything is touched, and the
credentials each route takes: the developer credential (as a bearer or, from px-plugin,
``X-API-Key``) or a session's reload token. The simulator flag is ``routes/guards.py``'s.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request

from powerx.auth import check_bearer
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError, validation_problems
from powerx.host.dev_sessions import DevSession, DevSessions
from powerx.host.routes import state
from powerx.host.routes.guards import read_json
from powerx.host.simulator import Simulator

_CREDENTIAL_FIX = (
    "send the simulator's credential as px-plugin does: `px-plugin dev --dev-api-token "
    "<token>` (or PX_DEV_API_TOKEN), the token from the credentials.json `powerx login "
    "--mock` wrote."
)

Model = TypeVar("Model", bound=BaseModel)


class _Body(BaseModel):
    # px-plugin sends fields the simulator has no use for (bundleSize, strategy...).
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class RegisterBody(_Body):
    plugin_id: str = Field(alias="pluginId", min_length=1, max_length=200)
    version: str | None = Field(default=None, max_length=64)
    entry_path: str | None = Field(default=None, alias="entryPath", min_length=1, max_length=4096)
    tenant: str | None = Field(default=None, max_length=200)
    tenant_id: int | None = Field(default=None, alias="tenantId", ge=0)
    developer_id: int | None = Field(default=None, alias="developerId", ge=0)
    metadata: dict[str, Any] = Field(default_factory=dict)


class FileEvent(_Body):
    path: str = Field(max_length=4096)


class ReloadBody(_Body):
    session_id: str = Field(alias="sessionId", min_length=1, max_length=64)
    # PowerX's own handler reads the token from the body; px-plugin sends it as the bearer.
    reload_token: str | None = Field(default=None, alias="reloadToken", max_length=2048)
    changed_files: list[str | FileEvent] = Field(
        default_factory=list, alias="changedFiles", max_length=10_000
    )
    sequence: int | None = None


def protocol_state(request: Request) -> tuple[Simulator, DevSessions]:
    """The simulator and its dev sessions (``create_app`` puts them in the app's state)."""
    return state.simulator(request), state.dev_sessions(request)


async def read_body(request: Request, model: type[Model]) -> Model:
    try:
        raw = await read_json(request)
    except ValueError:
        raw = None
    if not isinstance(raw, dict):
        raise PowerXError(
            ErrorCode.DEV_INVALID_BODY,
            "The request body is not a JSON object.",
            "send a JSON object (Content-Type: application/json), as px-plugin does.",
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = validation_problems(exc)
        raise PowerXError(
            ErrorCode.DEV_INVALID_BODY,
            f"The request body has {len(problems)} problem(s): {problems[0].message}.",
            "fix each field listed below.",
            status=422,
            problems=problems,
        ) from None


def bearer(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if the request has one."""
    header = request.headers.get("authorization", "")
    return header[7:].strip() or None if header[:7].lower() == "bearer " else None


def check_developer(request: Request) -> None:
    """The developer credential, as a bearer or (px-plugin's older client) X-API-Key."""
    header = request.headers.get("authorization")
    key = request.headers.get("x-api-key")
    try:
        check_bearer(header if header or not key else f"Bearer {key}")
    except PowerXError as error:
        if error.status == 401:
            error.fix = _CREDENTIAL_FIX
        raise


def check_session_access(request: Request, session: DevSession) -> None:
    """The session's own reload token, or the developer credential."""
    token = bearer(request)
    if token is None or not session.holds_token(token):
        check_developer(request)


def check_reload_token(request: Request, session: DevSession, in_body: str | None) -> None:
    """The session's reload token as the bearer (px-plugin) or in the body (PowerX's own
    handler reads it there); where both are sent, both must be it."""
    presented = [t for t in (bearer(request), in_body) if t]
    if not presented:
        raise PowerXError(
            ErrorCode.DEV_RELOAD_TOKEN_MISSING,
            "A reload needs the session's reload token.",
            "send 'Authorization: Bearer <reloadToken>' with the token register answered.",
            status=401,
        )
    if not all(session.holds_token(token) for token in presented):
        raise PowerXError(
            ErrorCode.DEV_RELOAD_TOKEN_INVALID,
            f"That is not the reload token of session {session.id}.",
            "use the reloadToken that register answered for this session, or register again.",
            status=401,
        )


def dev_url(simulator: Simulator, plugin_id: str) -> str:
    """Where a session's plugin answers (as ``powerx host status`` gives it)."""
    return f"{simulator.url}/plugins/{plugin_id}/"


class LocalInstallBody(_Body):
    """``POST /internal/plugins/local/install`` as PowerX's ``px dev watch --host-api`` sends it."""

    artifact_uri: str = Field(alias="artifactUri", min_length=1, max_length=4096)
    tenant_id: int | None = Field(default=None, alias="tenantId", ge=0)
    developer_id: int | None = Field(default=None, alias="developerId", ge=0)
    feature_flags: list[str] = Field(default_factory=list, alias="featureFlags", max_length=100)
    reset_cache: bool = Field(default=False, alias="resetCache")


class LocalReloadBody(_Body):
    """``POST /internal/plugins/local/reload``: the client's report of one hot update."""

    session_id: str = Field(alias="sessionId", min_length=1, max_length=64)
    duration_ms: int = Field(default=0, alias="durationMs", ge=0, le=3_600_000)
    sequence: int = 0
    success: bool = False
    error: str = Field(default="", max_length=4000)
    version_mismatch: bool = Field(default=False, alias="versionMismatch")
