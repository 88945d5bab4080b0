"""The signed tenant context, the identity config, and Location rewriting (pure logic)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import jwt
import pytest

from powerx.config import ContextSigning, Identity, SimulatorConfig, load_config
from powerx.errors import PowerXError
from powerx.host.forwarding import rewrite_location
from powerx.host.identity import ContextSigner

REPO = Path(__file__).resolve().parents[2]
SECRET = "s3cret-of-thirty-two-bytes-or-more"
VIEWER = Identity(tenant_id=42, user_id=7, roles=["viewer"], perms=["note:note:read"])


def _signer(secret: str = SECRET) -> ContextSigner:
    return ContextSigner({"viewer": VIEWER}, "viewer", ContextSigning(), secret)


def test_shipped_config_equals_the_built_in_defaults() -> None:
    shipped = load_config(REPO / "config/plugins/debug/host_simulator.yaml", env={})
    assert shipped == SimulatorConfig()
    assert shipped.identities[shipped.identity].perms == ["*"]


def test_a_default_identity_that_is_not_defined_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("identity: ghost\n")
    with pytest.raises(PowerXError) as raised:
        load_config(path, env={})
    assert raised.value.code == "config_invalid"
    assert "ghost" in raised.value.problems[0].message


def test_powerx_identity_env_picks_the_run_identity(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("identities:\n  a: {tenant_id: 3}\n  b: {tenant_id: 4}\nidentity: a\n")
    assert load_config(path, env={"POWERX_IDENTITY": "b"}).identity == "b"


def test_jwt_has_powerx_claims_and_verifies_with_issuer_and_plugin_audience() -> None:
    token = _signer().jwt(VIEWER, "com.x.note", now=1_700_000_000)
    claims = jwt.decode(
        token,
        SECRET,
        algorithms=["HS256"],
        issuer="powerx",
        audience="plugin:com.x.note",
        options={"verify_exp": False},
    )
    assert claims["tid"] == 42 and claims["uid"] == 7
    assert claims["roles"] == ["viewer"] and claims["perms"] == ["note:note:read"]
    assert claims["policy_version"] == "1"
    assert claims["exp"] - claims["iat"] == 300
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_signed_context_is_std_base64_json_with_hex_hmac_over_the_base64_text() -> None:
    encoded, signature = _signer().signed_context(VIEWER, now=1_700_000_000)
    body = json.loads(base64.b64decode(encoded, validate=True))
    assert body == {
        "tid": 42,
        "uid": 7,
        "roles": ["viewer"],
        "perms": ["note:note:read"],
        "policy_version": "1",
        "ts": 1_700_000_000,
    }
    expected = hmac.new(SECRET.encode(), encoded.encode(), hashlib.sha256).hexdigest()
    assert signature == expected


def test_plugin_environment_names_what_powerxpluginbase_reads() -> None:
    env = _signer().plugin_environment("com.x.note")
    for name in (
        "PLUGIN_CTX_HMAC_SECRET",
        "POWERX_SECURITY_JWT_SECRET",
        "POWERX_SECURITY_CTX_HMAC_SECRET",
    ):
        assert env[name] == SECRET
    assert env["PX_CTX_AUDIENCE"] == env["POWERX_SECURITY_JWT_AUDIENCE"] == "plugin:com.x.note"
    assert env["PX_CTX_ISSUER"] == env["POWERX_CTX_ISSUER"] == "powerx"
    assert env["PX_CTX_TTL"] == "300s"
    assert env["POWERX_PROXY"] == "1"


ORIGIN = "http://127.0.0.1:8787"
PREFIX = "/_p/com.x"


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("http://127.0.0.1:36101/api/v1/a/", f"{ORIGIN}{PREFIX}/api/v1/a/"),
        ("http://localhost:5000/api/v1/a?q=1", f"{ORIGIN}{PREFIX}/api/v1/a?q=1"),
        (f"{ORIGIN}/api/v1/a/", f"{ORIGIN}{PREFIX}/api/v1/a/"),
        (f"{ORIGIN}{PREFIX}/api/v1/a/", f"{ORIGIN}{PREFIX}/api/v1/a/"),
        ("/api/v1/a/", f"{PREFIX}/api/v1/a/"),
        (f"{PREFIX}/api/v1/a/", f"{PREFIX}/api/v1/a/"),
        ("a/", "a/"),
        ("https://example.com/login", "https://example.com/login"),
        ("http://127.0.0.1:9999/elsewhere", "http://127.0.0.1:9999/elsewhere"),
    ],
)
def test_rewrite_location(location: str, expected: str) -> None:
    assert rewrite_location(location, {36101, 5000}, ORIGIN, PREFIX) == expected
