"""Routing like PowerX's host (``/_p/<id>/api/v1``, forwarding, redirects, ``/docs``) and
the signed tenant context, checked from inside a real plugin process.

The plugin verifies both forms exactly as PowerXPluginBase's middleware does behind the
host (``POWERX_PROXY=1``: secrets, issuer and audience from ``POWERX_SECURITY_*``):
HS256 with iss/aud checked and 60 s leeway; ``X-PowerX-CTX`` decoded as standard base64,
its HMAC-SHA256 over the base64 text compared as hex, refused past 300 s.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import REPO, RunningSimulator, Workspace, make_workspace, write_plugin

PLUGIN_ID = "com.test.routing"

VERIFIER_APP = r'''
import base64, binascii, hashlib, hmac, json, os, time

import jwt
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse

PLUGIN_ID = os.environ["POWERX_PLUGIN_ID"]
JWT_SECRET = os.environ["POWERX_SECURITY_JWT_SECRET"]
CTX_SECRET = os.environ["POWERX_SECURITY_CTX_HMAC_SECRET"]
ISSUER = os.environ["POWERX_SECURITY_JWT_ISSUER"]
AUDIENCE = os.environ.get("POWERX_SECURITY_JWT_AUDIENCE") or "plugin:" + PLUGIN_ID
MAX_CTX_AGE_S = 300


class Rejected(Exception):
    pass


def verify_jwt(authorization):
    if not authorization.lower().startswith("bearer "):
        raise Rejected("no bearer")
    try:
        return jwt.decode(
            authorization[7:].strip(), JWT_SECRET, algorithms=["HS256"], issuer=ISSUER,
            audience=AUDIENCE, leeway=60, options={"require": ["exp", "iss", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise Rejected(f"jwt: {exc}") from None


def verify_ctx(ctx_b64, sig_hex):
    if not ctx_b64 or not sig_hex:
        raise Rejected("ctx missing")
    try:
        raw = base64.b64decode(ctx_b64, validate=True)  # Go's StdEncoding: padded
    except binascii.Error:
        raise Rejected("ctx: not base64") from None
    mac = hmac.new(CTX_SECRET.encode(), ctx_b64.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac.encode(), sig_hex.encode()):
        raise Rejected("ctx: bad signature")
    body = json.loads(raw)
    if not all(isinstance(body.get(k), int) for k in ("tid", "uid", "ts")):
        raise Rejected("ctx: tid, uid, ts must be integers")
    if time.time() - body["ts"] > MAX_CTX_AGE_S:
        raise Rejected("ctx: too old")
    return body


def verify(authorization, ctx_b64, sig_hex):
    rejected = {}
    claims = body = None
    try:
        claims = verify_jwt(authorization)
    except Rejected as exc:
        rejected["jwt"] = str(exc)
    try:
        body = verify_ctx(ctx_b64, sig_hex)
    except Rejected as exc:
        rejected["ctx"] = str(exc)
    return claims, body, rejected


app = FastAPI(docs_url="/api/v1/docs", openapi_url="/api/v1/openapi.json")


@app.get("/api/v1/whoami", name="whoami")
async def whoami(request: Request):
    h = request.headers
    claims, body, rejected = verify(
        h.get("authorization", ""), h.get("x-powerx-ctx", ""), h.get("x-powerx-ctx-sig", "")
    )
    if rejected:
        return JSONResponse({"rejected": rejected}, status_code=401)
    return {
        "jwt": claims,
        "ctx": body,
        "raw": {
            "authorization": h["authorization"],
            "ctx": h["x-powerx-ctx"],
            "sig": h["x-powerx-ctx-sig"],
        },
        "tenant": h.get("x-powerx-tenant"),
        "path": request.url.path,
        "root_path": request.scope.get("root_path"),
        "host": h.get("host"),
        "forwarded": {
            k: h.get(f"x-forwarded-{k}") for k in ("host", "proto", "prefix")
        },
        "url_for": str(request.url_for("whoami")),
        "env": {
            k: os.environ.get(k)
            for k in ("PLUGIN_CTX_HMAC_SECRET", "PX_CTX_ISSUER", "PX_CTX_AUDIENCE", "PX_CTX_TTL")
        },
    }


@app.get("/api/v1/check")
async def check(request: Request):
    """The same verification, of a context the test hands over (tampered or not)."""
    h = request.headers
    _, _, rejected = verify(
        h.get("x-check-authorization", ""), h.get("x-check-ctx", ""), h.get("x-check-ctx-sig", "")
    )
    return JSONResponse({"rejected": rejected}, status_code=401 if rejected else 200)


@app.get("/api/v1/cookies")
async def cookies():
    response = JSONResponse({"ok": True})
    response.set_cookie("a", "1", path="/")
    response.set_cookie("b", "2", path="/")
    return response


@app.get("/api/v1/items/")
async def items():
    return {"items": []}


@app.get("/api/v1/private")
async def private(request: Request):
    """A backend unaware of the proxy: it redirects to its own address."""
    host, port = request.scope["server"]
    return RedirectResponse(f"http://{host}:{port}/api/v1/whoami?from=private")
'''

MANIFEST = (
    f"id: {PLUGIN_ID}\nname: Routing\nversion: 1.0.0\nruntime: python3.11\n"
    "entry: app.py:app\nhost:\n  api: '>=2.3 <3'\npermissions: []\n"
)


def _config_with_identities(folder: Path) -> Path:
    data = yaml.safe_load((REPO / "config/plugins/debug/host_simulator.yaml").read_text())
    data["identities"]["viewer"] = {
        "tenant": "globex",
        "tenant_id": 2,
        "user_id": 7,
        "roles": ["viewer"],
        "perms": ["note:note:read"],
        "policy_version": "v9",
    }
    path = folder / "host_simulator.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _workspace(tmp: Path) -> Workspace:
    workspace = make_workspace(tmp)
    workspace.env["POWERX_CONFIG"] = str(_config_with_identities(tmp))
    workspace.login()
    # Its own dependencies, as a real FastAPI plugin declares them (installed by uv).
    files = {"app.py": VERIFIER_APP, "requirements.txt": "fastapi\nPyJWT\n"}
    write_plugin(workspace.root / "routing", MANIFEST, files)
    return workspace


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    workspace = _workspace(tmp_path_factory.mktemp("routing"))
    simulator = RunningSimulator(workspace, [workspace.root / "routing"])
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def uncontained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    """Without the sandbox a generation listens on a loopback port of this machine (in a
    sandbox, on a unix socket: it then has no private TCP address to redirect to)."""
    workspace = _workspace(tmp_path_factory.mktemp("routing-uncontained"))
    workspace.env["POWERX_SANDBOX"] = "off"
    simulator = RunningSimulator(workspace, [workspace.root / "routing"])
    yield simulator
    simulator.stop()


def _get(sim: RunningSimulator, path: str, **kwargs: object) -> httpx.Response:
    return httpx.get(sim.url + path, trust_env=False, timeout=10, **kwargs)  # type: ignore[arg-type]


def test_p_route_reaches_the_plugin_at_api_v1_signed_as_the_default_identity(
    sim: RunningSimulator,
) -> None:
    response = _get(sim, f"/_p/{PLUGIN_ID}/api/v1/whoami")
    assert response.status_code == 200, response.text
    seen = response.json()
    # PowerX's router strips /_p/<id>: the plugin's own path keeps /api/v1.
    assert seen["path"] == f"/_p/{PLUGIN_ID}/api/v1/whoami"  # root_path + the plugin's path
    assert seen["root_path"] == f"/_p/{PLUGIN_ID}"
    host = sim.url.removeprefix("http://")
    assert seen["host"] == host
    assert seen["forwarded"] == {"host": host, "proto": "http", "prefix": f"/_p/{PLUGIN_ID}"}
    assert seen["url_for"] == f"{sim.url}/_p/{PLUGIN_ID}/api/v1/whoami"
    claims, ctx = seen["jwt"], seen["ctx"]
    assert (claims["tid"], claims["uid"], claims["roles"], claims["perms"]) == (
        1,
        1,
        ["admin"],
        ["*"],
    )
    assert claims["policy_version"] == "1"
    assert claims["iss"] == "powerx"
    assert f"plugin:{PLUGIN_ID}" in claims["aud"]
    assert claims["exp"] - claims["iat"] == 300
    assert {k: ctx[k] for k in ("tid", "uid", "roles", "perms", "policy_version")} == {
        "tid": 1,
        "uid": 1,
        "roles": ["admin"],
        "perms": ["*"],
        "policy_version": "1",
    }
    assert seen["tenant"] == "acme"
    assert seen["env"]["PX_CTX_ISSUER"] == "powerx"
    assert seen["env"]["PX_CTX_AUDIENCE"] == f"plugin:{PLUGIN_ID}"
    assert seen["env"]["PX_CTX_TTL"] == "300s"
    assert seen["env"]["PLUGIN_CTX_HMAC_SECRET"]


def test_plugins_alias_keeps_working_with_its_own_prefix(sim: RunningSimulator) -> None:
    seen = _get(sim, f"/plugins/{PLUGIN_ID}/api/v1/whoami").json()
    assert seen["root_path"] == f"/plugins/{PLUGIN_ID}"
    assert seen["url_for"] == f"{sim.url}/plugins/{PLUGIN_ID}/api/v1/whoami"
    assert seen["jwt"]["tid"] == 1


def test_trailing_slash_redirect_stays_on_the_simulator(sim: RunningSimulator) -> None:
    response = _get(sim, f"/_p/{PLUGIN_ID}/api/v1/items")
    assert response.status_code == 307
    assert response.headers["location"] == f"{sim.url}/_p/{PLUGIN_ID}/api/v1/items/"
    followed = _get(sim, f"/_p/{PLUGIN_ID}/api/v1/items", follow_redirects=True)
    assert followed.status_code == 200
    assert followed.json() == {"items": []}


def test_a_location_at_the_plugins_private_address_is_moved_onto_the_simulator(
    uncontained: RunningSimulator,
) -> None:
    response = _get(uncontained, f"/_p/{PLUGIN_ID}/api/v1/private")
    assert response.status_code == 307
    assert response.headers["location"] == (
        f"{uncontained.url}/_p/{PLUGIN_ID}/api/v1/whoami?from=private"
    )


def test_fastapi_docs_load_with_openapi_under_the_prefix(sim: RunningSimulator) -> None:
    docs = _get(sim, f"/_p/{PLUGIN_ID}/api/v1/docs")
    assert docs.status_code == 200
    assert f"'/_p/{PLUGIN_ID}/api/v1/openapi.json'" in docs.text
    schema = _get(sim, f"/_p/{PLUGIN_ID}/api/v1/openapi.json")
    assert schema.status_code == 200
    assert "/api/v1/whoami" in schema.json()["paths"]


def test_responses_carry_date_and_server_once(sim: RunningSimulator) -> None:
    response = _get(sim, f"/_p/{PLUGIN_ID}/api/v1/items/")
    assert len(response.headers.get_list("date")) == 1
    assert len(response.headers.get_list("server")) == 1


def test_each_cookie_the_plugin_sets_arrives_as_its_own_header(sim: RunningSimulator) -> None:
    response = _get(sim, f"/_p/{PLUGIN_ID}/api/v1/cookies")
    cookies = response.headers.get_list("set-cookie")
    assert [c.split(";")[0] for c in cookies] == ["a=1", "b=2"]


def test_identity_per_request_needs_the_developer_credential(sim: RunningSimulator) -> None:
    path = f"/_p/{PLUGIN_ID}/api/v1/whoami"
    chosen = _get(sim, path, headers={**sim.debug_headers(), "x-powerx-identity": "viewer"})
    assert chosen.status_code == 200, chosen.text
    seen = chosen.json()
    assert (seen["jwt"]["tid"], seen["jwt"]["uid"], seen["jwt"]["roles"]) == (2, 7, ["viewer"])
    assert (seen["ctx"]["tid"], seen["ctx"]["perms"]) == (2, ["note:note:read"])
    assert seen["jwt"]["policy_version"] == "v9"
    assert seen["tenant"] == "globex"  # the identity's tenant, for the host API mock too
    # The developer's bearer credential is not handed to the plugin: the JWT replaced it.
    assert sim.token() not in seen["raw"]["authorization"]

    anonymous = _get(sim, path, headers={"x-powerx-identity": "viewer"})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "unauthenticated"
    unknown = _get(sim, path, headers={**sim.debug_headers(), "x-powerx-identity": "nobody"})
    assert unknown.status_code == 400
    assert unknown.json()["error"] == "identity_unknown"


def test_a_caller_cannot_hand_the_plugin_a_context_of_its_own(sim: RunningSimulator) -> None:
    forged = base64.b64encode(json.dumps({"tid": 99, "uid": 99}).encode()).decode()
    seen = _get(
        sim,
        f"/_p/{PLUGIN_ID}/api/v1/whoami",
        headers={
            "authorization": "Bearer forged",
            "x-powerx-ctx": forged,
            "x-powerx-ctx-sig": "00",
            "x-forwarded-prefix": "/elsewhere",
        },
    ).json()
    assert seen["jwt"]["tid"] == seen["ctx"]["tid"] == 1
    assert seen["root_path"] == f"/_p/{PLUGIN_ID}"


def _tampered_ctx(ctx_b64: str) -> str:
    body = json.loads(base64.b64decode(ctx_b64))
    body["tid"] = 2
    return base64.b64encode(json.dumps(body, separators=(",", ":")).encode()).decode()


def _tampered_jwt(authorization: str) -> str:
    header, payload, signature = authorization.removeprefix("Bearer ").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["tid"] = 2
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"Bearer {header}.{forged}.{signature}"


def test_the_plugin_rejects_a_tampered_context(sim: RunningSimulator) -> None:
    raw = _get(sim, f"/_p/{PLUGIN_ID}/api/v1/whoami").json()["raw"]
    path = f"/_p/{PLUGIN_ID}/api/v1/check"

    def check(authorization: str, ctx: str, sig: str) -> httpx.Response:
        headers = {"x-check-authorization": authorization, "x-check-ctx": ctx}
        return _get(sim, path, headers={**headers, "x-check-ctx-sig": sig})

    assert check(raw["authorization"], raw["ctx"], raw["sig"]).status_code == 200
    bad_ctx = check(raw["authorization"], _tampered_ctx(raw["ctx"]), raw["sig"])
    assert bad_ctx.status_code == 401
    assert bad_ctx.json()["rejected"] == {"ctx": "ctx: bad signature"}
    bad_jwt = check(_tampered_jwt(raw["authorization"]), raw["ctx"], raw["sig"])
    assert bad_jwt.status_code == 401
    assert list(bad_jwt.json()["rejected"]) == ["jwt"]


def test_host_start_as_signs_every_request_as_that_identity(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path)
    simulator = RunningSimulator(workspace, [workspace.root / "routing"], "--as", "viewer")
    try:
        seen = _get(simulator, f"/_p/{PLUGIN_ID}/api/v1/whoami").json()
        assert (seen["jwt"]["tid"], seen["ctx"]["uid"], seen["tenant"]) == (2, 7, "globex")
    finally:
        simulator.stop()
