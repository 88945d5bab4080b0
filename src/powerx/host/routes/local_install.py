"""PowerX's local-install endpoints, as its ``px dev watch --host-api <url>`` calls them
(PowerX ``backend/internal/transport/http/admin/plugin_dev``):

- ``POST /internal/plugins/local/install`` ``{artifactUri, tenantId?, developerId?,
  featureFlags?, resetCache?}``. PowerX opens a local-install session whose artefact then
  arrives in chunks over gRPC (``PluginReleaseService.PushHotReload``), which the simulator
  does not serve. Here ``artifactUri`` names the plugin folder (``file:///path`` or an
  absolute path): the install opens a dev session on it and serves it at once (build,
  start, flip). 201 ``{sessionId, tenant_uuid, status, ...}``; the answer's ``reloadToken``
  also drives ``POST /internal/dev/plugins/reload``.
- ``POST /internal/plugins/local/reload`` ``{sessionId, durationMs, sequence, success,
  error, versionMismatch}``: the client's report of one hot update, which PowerX turns into
  ``debug.hot_reload.*`` metrics. Recorded as the telemetry endpoint records a client's
  report: a success as the latency the client saw; a failure as a failed reload, whose
  reason is ``version_mismatch`` when the flag is set or the error says "version mismatch"
  (PowerX's rule), counted in ``debug_host_version_mismatch_total``. 202 ``{result: ok}``.

Both take the developer credential, and answer under ``/internal/plugins/local``,
``/api/internal/...`` (``--host-api http://host/api``) and ``/api/v1/internal/...``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.dev_reload import reload_from_source
from powerx.host.routes.dev_requests import (
    LocalInstallBody,
    LocalReloadBody,
    check_developer,
    dev_url,
    protocol_state,
    read_body,
)
from powerx.host.routes.dev_wire import protocol, rfc3339, success
from powerx.host.routes.guards import require_simulator_flag
from powerx.manifest import load_manifest
from powerx.observe.observer import new_reload_id, reload_record

__all__ = ["routes"]

BASE = "/internal/plugins/local"
PREFIXES = ("", "/api", "/api/v1")


def _artifact_folder(uri: str) -> Path:
    """The plugin folder an ``artifactUri`` names; a .pxp or zip is not built here."""
    parts = urlsplit(uri)
    local = parts.scheme == "file" and parts.netloc in {"", "localhost"}
    path = Path(unquote(parts.path)) if local else Path(uri)
    if (parts.scheme and not local) or not path.is_absolute() or "\0" in str(path):
        raise PowerXError(
            ErrorCode.LOCAL_INSTALL_URI_UNSUPPORTED,
            f"artifactUri {uri[:200]!r} is not a file:// URI or an absolute path.",
            "name the plugin folder on this machine: file:///path/to/plugin.",
            status=422,
        )
    if path.is_file():
        raise PowerXError(
            ErrorCode.LOCAL_INSTALL_ARTIFACT_UNSUPPORTED,
            f"{path} is a file; the simulator installs a plugin folder, not a packed artefact.",
            "point artifactUri at the plugin's folder (the one holding plugin.yaml): the "
            "simulator builds it itself.",
            status=422,
        )
    return path


@protocol
async def install(request: Request) -> Response:
    simulator, sessions = protocol_state(request)
    check_developer(request)
    require_simulator_flag(simulator)
    body = await read_body(request, LocalInstallBody)
    folder = _artifact_folder(body.artifact_uri)
    manifest = load_manifest(folder)  # a missing or invalid manifest: its own code
    session = sessions.register(
        manifest.id,
        folder.resolve(),
        version=manifest.version,
        tenant=str(body.tenant_id) if body.tenant_id else simulator.config.tenant,
        tenant_id=body.tenant_id,
        developer_id=body.developer_id,
        metadata={"artifactUri": body.artifact_uri, "featureFlags": body.feature_flags},
    )
    await simulator.observer.audit(
        "dev.session.start",
        manifest.id,
        {"session": session.id, "source": str(session.source_dir), "via": "local_install"},
    )
    try:
        async with session.lock:
            activation, build_ms = await reload_from_source(simulator, session, [])
    except PowerXError as error:
        sessions.reloaded(session, False, None, {"error": error.code})
        sessions.end(session, "install failed")
        await simulator.observer.audit(
            "dev.session.end", manifest.id, {"session": session.id, "note": "install failed"}
        )
        error.details["sessionId"] = session.id
        raise
    sessions.reloaded(
        session,
        True,
        build_ms,
        {"generation": activation.generation, "digest": activation.digest},
    )
    return success(
        {
            "sessionId": session.id,
            "tenant_uuid": session.tenant,
            "tenantId": body.tenant_id,
            "status": session.status,
            "logUrl": f"{simulator.url}/internal/debug/logs?plugin={manifest.id}",
            "devUrl": dev_url(simulator, manifest.id),
            "reloadToken": session.reload_token,
            "expiresAt": rfc3339(session.expires_at),
            "generation": activation.generation,
            "digest": activation.digest,
        },
        status=201,
    )


@protocol
async def record_reload(request: Request) -> Response:
    simulator, sessions = protocol_state(request)
    check_developer(request)
    body = await read_body(request, LocalReloadBody)
    plugin = sessions.get(body.session_id).plugin_id
    mismatch = body.version_mismatch or "version mismatch" in body.error.lower()
    if body.success and not mismatch:
        simulator.observer.client_report(
            "reload",
            plugin,
            None,
            {"latency_ms": body.duration_ms, "sequence": body.sequence, "via": "local_reload"},
        )
        return success({"result": "ok"}, status=202)
    reason = "version_mismatch" if mismatch else "reload_failed"
    message = body.error or f"The client reports hot update {body.sequence} failed."
    failure = simulator.reload_failures.failed(plugin, reason, message, origin="client")
    await simulator.observer.reload_finished(
        reload_record(
            new_reload_id(),
            plugin,
            "failed",
            0.0,
            generation=failure.serving_generation,
            reason=reason,
            origin="client",
            duration_ms=float(body.duration_ms),
        ),
        message,
    )
    if mismatch:
        simulator.counters["version_mismatch"] += 1
    return success({"result": "ok"}, status=202)


def _routes() -> list[Route]:
    found = []
    for prefix in PREFIXES:
        found += [
            Route(f"{prefix}{BASE}/install", install, methods=["POST"]),
            Route(f"{prefix}{BASE}/reload", record_reload, methods=["POST"]),
        ]
    return found


routes = _routes()
