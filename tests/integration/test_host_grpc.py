"""The host's own gRPC services (STS, IAM, reflection) as real plugins call them: from
inside their sandbox, with a client that behaves like PowerXPluginBase's (the example's
upstream.py), and what anyone else on the machine gets from the listener."""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from powerx.host.tenants import TenantData
from powerx.host.upstream.contracts import contracts
from powerx.testing import wait_until
from tests.conftest import EXAMPLES, RunningSimulator, Workspace
from tests.integration.test_hot_reload import copy_example
from tests.integration.test_observability import metric_samples

EXAMPLE_ID = "com.example.hello-backend-python"
CLIENT_ID = "com.test.grpc-client"
MEMBERS = "/powerx.iam.v1.MemberService/ListMembers"

# A plugin that drives the example's PowerXPluginBase-like client through the cases the
# test checks: refreshing near expiry, re-exchanging a refused token, a scope it lacks.
CLIENT_SERVER = """
import os

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from upstream import StsTokens, Upstream, UpstreamError

MEMBERS = "/powerx.iam.v1.MemberService/ListMembers"


def client(request):
    ttl = request.query_params.get("ttl", "300s")
    return Upstream({**os.environ, "PX_STS_TTL": ttl})


def answer(upstream, method, calls=1):
    try:
        for _ in range(calls):
            data = upstream.call(method, {"page": {"page_size": 50}})["data"]
    except UpstreamError as error:
        body = {"code": error.code.name, "details": error.details}
        return JSONResponse({**body, "exchanges": upstream.tokens.exchanges}, status_code=403)
    names = [m["username"] for m in data.get("items", [])]
    return JSONResponse({"usernames": names, "exchanges": upstream.tokens.exchanges})


def healthz(request):
    return JSONResponse({"ok": True})


def calls(request):
    return answer(client(request), MEMBERS, int(request.query_params["calls"]))


def stale(request):
    upstream = client(request)
    # The first token it holds is one the host no longer takes (as after a key rotation).
    first = iter([("stale-token-from-an-earlier-run", 3600.0)])
    upstream.tokens = StsTokens(lambda: next(first, None) or upstream.exchange())
    return answer(upstream, MEMBERS)


def teams(request):
    return answer(client(request), "/powerx.iam.v1.TeamService/ListTeams")


def token(request):
    upstream = client(request)
    upstream.client_id = request.query_params.get("client_id", upstream.client_id)
    try:
        access, lasts = upstream.exchange()
    except UpstreamError as error:
        return JSONResponse({"code": error.code.name, "details": error.details}, status_code=401)
    return JSONResponse({"token": access, "expires_in": lasts})


app = Starlette(routes=[
    Route("/healthz", healthz), Route("/api/v1/calls", calls), Route("/api/v1/stale", stale),
    Route("/api/v1/teams", teams), Route("/api/v1/token", token),
])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
"""
CLIENT_MANIFEST = f"""
id: {CLIENT_ID}
name: gRPC client
version: 0.1.0
backend: {{entry: python server.py, port: 8080, health: /healthz}}
routes: {{basePath: /api/v1}}
permissions: [members:read]   # not teams:read
"""


def newest_first(tenant: str) -> list[str]:
    records = TenantData().members(tenant)
    return [m["username"] for m in sorted(records, key=lambda m: -m["created_at"])]


def client_plugin(tmp_path: Path) -> Path:
    folder = tmp_path / "grpc-client"
    folder.mkdir()
    (folder / "plugin.yaml").write_text(CLIENT_MANIFEST)
    (folder / "server.py").write_text(CLIENT_SERVER)
    shutil.copy(EXAMPLES / "hello-backend-python" / "upstream.py", folder / "upstream.py")
    return folder


def grpc_socket(simulator: RunningSimulator) -> str:
    address = str(simulator.status()["host"]["grpc"]["address"])
    assert address.startswith("unix:///")
    return address


@pytest.fixture
def outside(start_simulator: Any, workspace: Workspace, tmp_path: Path) -> Iterator[Any]:
    """The client plugin in a simulator, and a channel to its gRPC listener from here:
    outside every sandbox, with no credential of a plugin."""
    workspace.login()
    simulator = start_simulator([client_plugin(tmp_path)])
    channel = grpc.insecure_channel(grpc_socket(simulator))
    yield simulator, channel
    channel.close()


def unary(channel: grpc.Channel, method: str, request: Any, response_type: str) -> Any:
    return channel.unary_unary(
        method,
        request_serializer=type(request).SerializeToString,
        response_deserializer=contracts().message(response_type).FromString,
    )


def rpc_error(call: Any, *args: Any, **kwargs: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, **kwargs)
    return caught.value


def list_members(channel: grpc.Channel, token: str | None, tenant: int = 1) -> Any:
    request = contracts().new("powerx.iam.v1.ListMembersRequest")
    metadata = [("x-powerx-tenant-id", str(tenant))]
    if token is not None:
        metadata.append(("authorization", f"Bearer {token}"))
    call = unary(channel, MEMBERS, request, "powerx.iam.v1.ListMembersResponse")
    return lambda: call(request, metadata=metadata, timeout=10)


def introspect(channel: grpc.Channel, token: str) -> Any:
    request = contracts().new("powerx.auth.sts.v1.IntrospectRequest", access_token=token)
    method = "/powerx.auth.sts.v1.STSService/Introspect"
    call = unary(channel, method, request, "powerx.auth.sts.v1.IntrospectResponse")
    return call(request, timeout=10).data


def metrics(simulator: RunningSimulator) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = simulator.get("/metrics", headers=simulator.debug_headers())
    assert response.status_code == 200
    return metric_samples(response.text)


def counted(simulator: RunningSimulator, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, have), value in metrics(simulator).items()
        if sample == name and labels.items() <= dict(have).items()
    )


def audit_rows(simulator: RunningSimulator, plugin: str, action: str) -> list[dict[str, Any]]:
    response = simulator.get(
        f"/internal/debug/audit?plugin={plugin}&limit=1000", headers=simulator.debug_headers()
    )
    return [r for r in response.json()["records"] if r["action"] == action]


def grpc_logs(simulator: RunningSimulator, plugin: str) -> list[dict[str, Any]]:
    response = simulator.get(
        f"/internal/debug/logs?plugin={plugin}&follow=0&tail=1000",
        headers=simulator.debug_headers(),
    )
    records = [
        json.loads(line[len("data: ") :])
        for line in response.text.splitlines()
        if line.startswith("data: ")
    ]
    return [r for r in records if r.get("stream") == "grpc"]


@pytest.mark.parametrize(("sandbox", "tenant"), [("auto", "acme"), ("off", "globex")])
def test_the_example_lists_its_tenants_members_over_grpc_and_is_refused_another_tenant(
    workspace: Workspace, start_simulator: Any, tmp_path: Path, sandbox: str, tenant: str
) -> None:
    workspace.env["POWERX_SANDBOX"] = sandbox
    workspace.env["POWERX_TENANT"] = tenant  # the run's tenant: the developer's choice
    workspace.login()
    plugin = copy_example(EXAMPLES / "hello-backend-python", tmp_path / "hello-backend")
    simulator: RunningSimulator = start_simulator([plugin])
    # In its sandbox the socket is bound in; outside one the plugin opens the same path.
    assert simulator.plugin_status(EXAMPLE_ID)["contained"] is (sandbox == "auto")
    base = f"/_p/{EXAMPLE_ID}/api/v1"

    first = simulator.get(f"{base}/members?view=profile")
    assert first.status_code == 200, first.text
    body = first.json()
    # The run's tenant (the identity's tenant_id, 1): the same people as its contacts.
    assert body["tenant_id"] == 1
    assert [m["username"] for m in body["items"]] == newest_first(tenant)
    assert body["total"] == len(body["items"]) and body["exchanges"] == 1
    assert {m["email"].split("@")[1] for m in body["items"]} == {f"{tenant}.example"}
    page = simulator.get(f"{base}/members?page_size=2&offset=2").json()
    assert [m["username"] for m in page["items"]] == newest_first(tenant)[2:4]
    assert page["exchanges"] == 1  # the token is reused while it has over 60 s left
    teams = simulator.get(f"{base}/teams").json()
    assert {t["name"] for t in teams["items"]} == {"Platform", "Support", "Growth"}

    denials_before = counted(
        simulator, "debug_permission_denied_total", plugin=EXAMPLE_ID, scope="tenant"
    )
    other = simulator.get(f"{base}/members?tenant_id=2")
    assert other.status_code == 403, other.text
    assert other.json()["error"] == "upstream_permission_denied"
    assert "tenant 2" in other.json()["message"]
    # Refused, the client exchanged once more and retried once, as PowerXPluginBase does.
    assert simulator.get(f"{base}/members").json()["exchanges"] == 2
    assert (
        counted(simulator, "debug_permission_denied_total", plugin=EXAMPLE_ID, scope="tenant")
        == denials_before + 2
    )
    assert wait_until(lambda: len(audit_rows(simulator, EXAMPLE_ID, "permission.denied")) >= 2)
    assert wait_until(lambda: audit_rows(simulator, EXAMPLE_ID, "sts.exchange"))

    # Every call is in the plugin's log; the Exchange's secret only masked.
    def both_calls(records: list[dict[str, Any]]) -> bool:
        codes = {(r["fields"]["method"], r["fields"]["code"]) for r in records}
        return {(MEMBERS, "OK"), (MEMBERS, "PERMISSION_DENIED")} <= codes

    records = wait_until(
        lambda: grpc_logs(simulator, EXAMPLE_ID), accept=both_calls, what="both ListMembers calls"
    )
    exchanges = [r for r in records if r["fields"]["method"].endswith("/Exchange")]
    assert exchanges and exchanges[0]["fields"]["request"]["client_secret"] == "***"
    assert exchanges[0]["fields"]["request"]["client_id"] == f"{EXAMPLE_ID}.1"
    assert "pxs_" not in json.dumps(records)
    assert (
        counted(
            simulator, "debug_host_grpc_calls_total", plugin=EXAMPLE_ID, method=MEMBERS, code="OK"
        )
        >= 3
    )


def test_a_client_like_powerxpluginbases_refreshes_near_expiry_and_re_exchanges_once(
    outside: Any,
) -> None:
    simulator, _ = outside
    base = f"/_p/{CLIENT_ID}/api/v1"
    # 300 s tokens: one Exchange for three calls; 30 s ones are always under 60 s left.
    kept = simulator.get(f"{base}/calls?calls=3&ttl=300s").json()
    assert kept == {"usernames": newest_first("acme"), "exchanges": 1}
    assert simulator.get(f"{base}/calls?calls=3&ttl=30s").json()["exchanges"] == 3
    # A token the host refuses (UNAUTHENTICATED) is dropped, exchanged again, retried once.
    stale = simulator.get(f"{base}/stale")
    assert stale.status_code == 200, stale.text
    assert stale.json() == {"usernames": newest_first("acme"), "exchanges": 2}
    assert (
        counted(simulator, "debug_host_grpc_calls_total", method=MEMBERS, code="UNAUTHENTICATED")
        >= 1
    )
    # A scope the manifest does not declare: refused, counted and audited as on HTTP.
    teams = simulator.get(f"{base}/teams")
    assert teams.status_code == 403 and teams.json()["code"] == "PERMISSION_DENIED"
    assert "teams:read" in teams.json()["details"]
    assert counted(simulator, "debug_permission_denied_total", plugin=CLIENT_ID, scope="teams:read")
    assert wait_until(
        lambda: any(
            r["details"]["scope"] == "teams:read"
            for r in audit_rows(simulator, CLIENT_ID, "permission.denied")
        )
    )
    # Its secret is for itself and its tenant only: not another plugin's, not tenant 2.
    for other in (f"{EXAMPLE_ID}.1", f"{CLIENT_ID}.2"):
        refused = simulator.get(f"{base}/token?client_id={other}")
        assert refused.status_code == 401 and refused.json()["code"] == "UNAUTHENTICATED"


def test_reflection_lists_the_hosts_services_to_a_credential_only(
    outside: Any, workspace: Workspace
) -> None:
    _, channel = outside
    anonymous = ProtoReflectionDescriptorDatabase(channel)
    refused = rpc_error(anonymous.get_services)
    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED

    # As `grpcurl -H "authorization: Bearer $TOKEN" list` would, with the developer's own
    # credential (a plugin's tokens do too: the example's client reflects with its own).
    class Bearer(grpc.StreamStreamClientInterceptor):
        def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
            metadata = [("authorization", f"Bearer {workspace.token()}")]
            return continuation(details._replace(metadata=metadata), requests)

    database = ProtoReflectionDescriptorDatabase(grpc.intercept_channel(channel, Bearer()))
    assert set(database.get_services()) == {
        "powerx.auth.sts.v1.STSService",
        "powerx.iam.v1.MemberService",
        "powerx.iam.v1.TeamService",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    member = database.FindFileContainingSymbol("powerx.iam.v1.Member")
    assert member.name == "powerx/iam/v1/member.proto"
    fields = {f.name: f.number for f in member.message_type[0].field}
    assert (fields["username"], fields["email"], fields["team_ids"]) == (3, 10, 13)


def test_outside_the_sandbox_the_listener_serves_nothing_without_a_plugins_credential(
    outside: Any, workspace: Workspace
) -> None:
    simulator, channel = outside
    address = grpc_socket(simulator)
    folder = Path(address.removeprefix("unix://")).parent
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # no other user reaches the socket
    assert stat.S_ISSOCK(os.stat(address.removeprefix("unix://")).st_mode)
    shown = workspace.powerx("host", "status").stdout
    assert f"gRPC for plugins: {address}" in shown and "MemberService" in shown

    for token in (None, "not-a-token", workspace.token()):  # the developer's is no plugin's
        refused = rpc_error(list_members(channel, token))
        assert refused.code() == grpc.StatusCode.UNAUTHENTICATED, token

    # A wrong secret: UNAUTHENTICATED, with the stable code, audited.
    exchange = contracts().new(
        "powerx.auth.sts.v1.ExchangeRequest",
        client_id=f"{CLIENT_ID}.1",
        client_secret="pxs_guessed",
    )
    call = unary(
        channel,
        "/powerx.auth.sts.v1.STSService/Exchange",
        exchange,
        "powerx.auth.sts.v1.ExchangeResponse",
    )
    refused = rpc_error(call, exchange, timeout=10)
    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
    assert ("x-powerx-error", "invalid_client") in (refused.trailing_metadata() or ())
    assert wait_until(lambda: audit_rows(simulator, CLIENT_ID, "sts.refused"))

    # The plugin's own token works from anywhere (it is the credential) ...
    fresh = simulator.get(f"/_p/{CLIENT_ID}/api/v1/token").json()
    assert introspect(channel, fresh["token"]).active
    answer = list_members(channel, fresh["token"])()
    assert [m.username for m in answer.data.items] == newest_first("acme")
    # ... for its own tenant only ...
    assert rpc_error(list_members(channel, fresh["token"], tenant=2)).code() == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    # ... and until it expires (a 1 s token, watched through Introspect).
    short = simulator.get(f"/_p/{CLIENT_ID}/api/v1/token?ttl=1s").json()
    assert short["expires_in"] == 1
    assert wait_until(lambda: not introspect(channel, short["token"]).active, timeout_s=5)
    expired = rpc_error(list_members(channel, short["token"]))
    assert expired.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "expired" in (expired.details() or "")
    assert ("x-powerx-error", "token_expired") in (expired.trailing_metadata() or ())


def test_the_grpc_calls_a_request_made_are_in_its_inspector_record(
    workspace: Workspace, start_simulator: Any, tmp_path: Path
) -> None:
    """Issue 21: a gRPC call is in the request inspector beside the request that made it."""
    workspace.login()
    plugin = copy_example(EXAMPLES / "hello-backend-python", tmp_path / "hello-backend")
    simulator: RunningSimulator = start_simulator([plugin])
    response = simulator.get(f"/_p/{EXAMPLE_ID}/api/v1/members")
    assert response.status_code == 200, response.text
    request_id = response.headers["x-request-id"]

    def grpc_lines() -> list[str]:
        record = simulator.get(
            f"/internal/debug/requests/{request_id}", headers=simulator.debug_headers()
        ).json()
        return [line["message"] for line in record.get("logs", []) if "gRPC" in line["message"]]

    lines = wait_until(grpc_lines, accept=lambda found: len(found) >= 2, what="2 gRPC lines")
    assert any("STSService/Exchange OK" in line for line in lines), lines
    assert any("MemberService/ListMembers OK" in line for line in lines), lines
