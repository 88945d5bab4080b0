"""The catalogue of host images the simulator can emulate, and their API surfaces."""

from __future__ import annotations

from dataclasses import dataclass

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.manifest import Manifest


@dataclass(frozen=True)
class HostApi:
    """One host API operation a plugin can call under ``/host/api``."""

    name: str
    method: str
    path: str
    scope: str


@dataclass(frozen=True)
class HostRpc:
    """One method of the host's gRPC services (host/upstream) a plugin can call."""

    method: str  # "/powerx.iam.v1.MemberService/ListMembers"
    scope: str  # what the caller's token must carry; "" for none (the STS itself)


@dataclass(frozen=True)
class HostImage:
    name: str
    api_version: str
    apis: tuple[HostApi, ...]
    rpcs: tuple[HostRpc, ...] = ()

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(api.scope for api in self.apis) | {r.scope for r in self.rpcs if r.scope}

    def api_named(self, name: str) -> HostApi | None:
        return next((api for api in self.apis if api.name == name), None)

    def rpc(self, method: str) -> HostRpc | None:
        return next((rpc for rpc in self.rpcs if rpc.method == method), None)


_CONTACTS = (
    HostApi("contacts.list", "GET", "/contacts", "contacts:read"),
    HostApi("contacts.get", "GET", "/contacts/{contact_id}", "contacts:read"),
)
_KV = (
    HostApi("kv.get", "GET", "/kv/{key}", "kv:read"),
    HostApi("kv.put", "PUT", "/kv/{key}", "kv:write"),
    HostApi("kv.delete", "DELETE", "/kv/{key}", "kv:write"),
)
_MESSAGES = (
    HostApi("messages.list", "GET", "/messages", "messages:read"),
    HostApi("messages.send", "POST", "/messages", "messages:write"),
)

# PowerX's gRPC services for plugins (PX_GRPC_UPSTREAM_ADDRESS): the STS, which any
# plugin may call with its client credentials, and IAM, which needs a scope.
_STS = tuple(
    HostRpc(f"/powerx.auth.sts.v1.STSService/{name}", "") for name in ("Exchange", "Introspect")
)
_IAM = (
    *(
        HostRpc(f"/powerx.iam.v1.MemberService/{name}", "members:read")
        for name in ("GetMember", "BatchGetMembers", "ListMembers")
    ),
    *(
        HostRpc(f"/powerx.iam.v1.TeamService/{name}", "teams:read")
        for name in ("GetTeam", "ListTeams", "ListTeamMembers", "ListMemberTeams")
    ),
)

IMAGES: dict[str, HostImage] = {
    image.name: image
    for image in (
        HostImage("powerx/host-simulator:2.2.0", "2.2", _CONTACTS + _KV, _STS),
        HostImage("powerx/host-simulator:2.4.0", "2.4", _CONTACTS + _KV + _MESSAGES, _STS + _IAM),
        HostImage(
            "powerx/host-simulator:3.0.0",
            "3.0",
            (
                *_CONTACTS,
                HostApi("contacts.search", "GET", "/contacts/search", "contacts:read"),
                *_KV,
                *_MESSAGES,
                HostApi("tenant.get", "GET", "/tenant", "tenant:read"),
            ),
            _STS + _IAM,
        ),
    )
}
DEFAULT_IMAGE = "powerx/host-simulator:2.4.0"


def get_image(name: str) -> HostImage:
    """Look an image up by full name or by its tag (``2.4.0``)."""
    image = IMAGES.get(name) or IMAGES.get(f"powerx/host-simulator:{name}")
    if image is None:
        raise PowerXError(
            ErrorCode.UNKNOWN_IMAGE,
            f"No host image named '{name}'.",
            f"use one of: {', '.join(IMAGES)}",
        )
    return image


def check_compatible(manifest: Manifest, image: HostImage) -> None:
    """Refuse a plugin whose ``host.api`` range excludes the image's API version."""
    if manifest.host is None:  # no range declared (PowerX's plugin.yaml has none): any API
        return
    wanted = manifest.host.range
    if wanted.admits(image.api_version):
        return
    fitting = [i.name for i in IMAGES.values() if wanted.admits(i.api_version)]
    if fitting:
        fix = (
            f"run the simulator with image '{fitting[-1]}' (--image or 'image:' in "
            f"host_simulator.yaml), or declare host.api: "
            f"'{wanted.suggest_for(image.api_version)}' if the plugin supports "
            f"API {image.api_version}"
        )
    else:
        fix = (
            f"declare a host.api range that admits an available API version, "
            f"e.g. '{wanted.suggest_for(image.api_version)}' for {image.name}"
        )
    raise PowerXError(
        ErrorCode.VERSION_MISMATCH,
        f"Plugin {manifest.id} supports host API '{wanted.text}', but {image.name} "
        f"provides host API {image.api_version}.",
        fix,
        status=409,
        details={
            "plugin": manifest.id,
            "plugin_range": wanted.text,
            "host_api": image.api_version,
            "image": image.name,
        },
    )


def unknown_permissions(manifest: Manifest, image: HostImage) -> list[str]:
    """Host API scopes the manifest asks for that this image does not offer. Scopes of the
    resources the plugin declares itself (``{resource, actions}``) are its own, not the
    host API's."""
    own = set(manifest.resource_scopes)
    return [s for s in manifest.permissions if s not in image.scopes and s not in own]
