"""What an uploaded artefact must pass before any state is touched: archive safety, its
manifest (of the plugin it was announced as), what it runs, the host image's version
range, egress that never names production, permissions the image offers."""

from __future__ import annotations

from collections.abc import Sequence

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError, Problem
from powerx.host.artefact_info import check_artefact_info
from powerx.host.artefacts import check_archive, member_data
from powerx.images import HostImage, check_compatible, unknown_permissions
from powerx.manifest import MANIFEST_FILE, MANIFEST_FILES, PLUGIN_YAML, Manifest, parse_manifest
from powerx.runtimes.egress_guard import reaches_production


def admit_archive(
    data: bytes,
    image: HostImage,
    production_hosts: Sequence[str],
    announced: str | None = None,
) -> Manifest:
    """The archive's manifest, once every check passed, in the order above; the first
    that fails raises (a version mismatch names the plugin and its version)."""
    members = check_archive(data)
    # The artefact carries the plugin's own file; plugin.yaml wins, as in a folder.
    found = [(n, member_data(data, members, n)) for n in MANIFEST_FILES]
    name, raw = next(((n, r) for n, r in found if r is not None), (MANIFEST_FILE, None))
    if raw is None:
        raise PowerXError(
            ErrorCode.MANIFEST_MISSING,
            f"The archive holds no {PLUGIN_YAML} (or {MANIFEST_FILE}).",
            "push archives built by `powerx dev`.",
            status=422,
        )
    manifest = parse_manifest(raw.decode("utf-8", errors="replace"), name)
    if announced is not None and announced != manifest.id:
        # One plugin's upload must not replace another's.
        raise PowerXError(
            ErrorCode.PLUGIN_MISMATCH,
            f"The upload is announced as plugin '{announced[:100]}', but its manifest "
            f"is {manifest.id}'s.",
            "push each plugin from its own folder (`powerx dev` names it for you).",
            status=409,
            details={"plugin": announced[:100], "manifest_plugin": manifest.id},
        )
    check_artefact_info(data, members, manifest)
    try:
        check_compatible(manifest, image)
    except PowerXError as error:
        error.details.setdefault("plugin", manifest.id)
        error.details.setdefault("version", manifest.version)
        raise
    production = [host for host in manifest.egress if reaches_production(host, production_hosts)]
    if production:
        raise PowerXError(
            ErrorCode.EGRESS_PRODUCTION,
            f"{manifest.id} lists production PowerX host(s) {', '.join(production)} in "
            "egress; the simulator never lets a plugin reach production.",
            "remove them from egress; call the mock host API through POWERX_HOST_URL.",
            status=422,
            problems=[Problem("egress", f"production host '{h}'") for h in production],
            details={"plugin": manifest.id},
        )
    unknown = unknown_permissions(manifest, image)
    if unknown:
        raise PowerXError(
            ErrorCode.UNKNOWN_PERMISSION,
            f"{manifest.id} asks for scope(s) {', '.join(unknown)} that {image.name} "
            "does not offer.",
            "remove them from permissions, or use an image that has them.",
            status=422,
            problems=[Problem("permissions", f"unknown scope '{s}'") for s in unknown],
        )
    return manifest
