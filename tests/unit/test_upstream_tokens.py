"""The STS's client credentials and tokens (host/upstream/tokens.py)."""

from __future__ import annotations

import time

import jwt
import pytest

from powerx.errors import PowerXError
from powerx.host.upstream.tokens import AUDIENCE, MAX_TTL_S, ClientId, TokenService

CLIENT = ClientId("com.example.hello", 1)


def test_client_id_is_the_plugin_id_then_the_tenant_number() -> None:
    assert ClientId.parse("com.example.hello.1") == CLIENT
    assert str(CLIENT) == "com.example.hello.1"
    for bad in ("com.example.hello", "com.example.hello.x", ".1", "com.example.hello.0"):
        with pytest.raises(PowerXError) as caught:
            ClientId.parse(bad)
        assert caught.value.code == "invalid_client_id" and caught.value.status == 400


def test_each_plugin_and_tenant_has_its_own_secret_and_a_wrong_one_is_refused() -> None:
    sts = TokenService()
    secret = sts.client_secret(CLIENT)
    assert sts.check_client("com.example.hello.1", secret) == CLIENT
    other_tenant = sts.client_secret(ClientId("com.example.hello", 2))
    other_plugin = sts.client_secret(ClientId("com.example.other", 1))
    assert len({secret, other_tenant, other_plugin}) == 3
    for wrong in (other_tenant, other_plugin, "", secret[:-1]):
        with pytest.raises(PowerXError) as caught:
            sts.check_client("com.example.hello.1", wrong)
        assert caught.value.code == "invalid_client" and caught.value.status == 401
    # Another run's STS knows other secrets.
    with pytest.raises(PowerXError):
        TokenService().check_client("com.example.hello.1", secret)


def test_a_token_carries_powerx_claims_and_verifies() -> None:
    sts = TokenService()
    access = sts.issue(CLIENT, "tenant-uuid", ("members:read",), ttl_s=120, now=1_000)
    header = jwt.get_unverified_header(access.token)
    claims = jwt.decode(access.token, options={"verify_signature": False})
    assert header["alg"] == "HS256" and header["kid"]
    assert claims["iss"] == "powerx-sts" and claims["aud"] == [AUDIENCE]
    assert claims["sub"] == "client:com.example.hello.1"
    assert (claims["tid"], claims["tid_n"], claims["plugin_id"]) == (
        "tenant-uuid",
        1,
        CLIENT.plugin,
    )
    assert (claims["iat"], claims["exp"], claims["scope"]) == (1_000, 1_120, "members:read")
    now = int(time.time())
    fresh = sts.issue(CLIENT, "tenant-uuid", ("members:read", "teams:read"), now=now)
    verified = sts.verify(fresh.token)
    assert verified.scopes == ("members:read", "teams:read")
    assert verified.expires_at - verified.issued_at == 300  # the default TTL


def test_an_expired_token_is_refused_as_expired() -> None:
    sts = TokenService()
    expired = sts.issue(CLIENT, "u", (), ttl_s=60, now=int(time.time()) - 61)
    with pytest.raises(PowerXError) as caught:
        sts.verify(expired.token)
    assert caught.value.code == "token_expired" and caught.value.status == 401


def test_tokens_of_another_run_or_audience_or_forged_are_refused() -> None:
    sts = TokenService()
    now = int(time.time())
    elsewhere = TokenService().issue(CLIENT, "u", (), now=now).token
    other_audience = sts.issue(CLIENT, "u", (), audience="other:api", now=now).token
    for token, code in (
        (elsewhere, "token_invalid"),
        (other_audience, "token_audience"),
        ("not-a-token", "token_invalid"),
        (jwt.encode({"exp": now + 60, "iat": now}, "a-guess" * 8, "HS256"), "token_invalid"),
    ):
        with pytest.raises(PowerXError) as caught:
            sts.verify(token)
        assert (caught.value.code, caught.value.status) == (code, 401)
    assert sts.verify(other_audience, audience=None).audience == "other:api"


def test_the_ttl_is_capped_and_a_non_positive_one_is_the_default() -> None:
    sts = TokenService()
    assert sts.issue(CLIENT, "u", (), ttl_s=10 * MAX_TTL_S, now=0).expires_at == MAX_TTL_S
    assert sts.issue(CLIENT, "u", (), ttl_s=0, now=0).expires_at == 300
