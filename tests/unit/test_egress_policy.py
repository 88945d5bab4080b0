"""The egress policy's pure rules (runtimes/egress_guard.py), as the guards and the
egress proxy apply them: pairs of address and port, never a loopback port by name."""

from __future__ import annotations

import pytest

from powerx.errors import PowerXError
from powerx.manifest import parse_manifest
from powerx.runtimes.egress_guard import EgressPolicy, canonical_ip, reaches_production

PRODUCTION = ["api.powerx.io", "*.powerx.io", "*.powerx.cloud"]


@pytest.mark.parametrize(
    ("entry", "reaches"),
    [
        ("api.powerx.io", True),
        ("api.powerx.io:443", True),
        ("eu.api.powerx.io:8443", True),
        ("*.powerx.io", True),
        ("*.io", True),
        ("*.cloud:443", True),
        ("powerx.io.example.com", False),
        ("api.example.com:443", False),
        ("*.example.io", False),
    ],
)
def test_an_egress_entry_reaches_production_with_a_port_or_under_a_wildcard(
    entry: str, reaches: bool
) -> None:
    assert reaches_production(entry, PRODUCTION) is reaches


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "127.0.0.1"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("127.1", None),
        ("0x7f000001", None),
        ("localhost", None),
    ],
)
def test_addresses_have_one_canonical_form_and_shorthands_are_names(
    text: str, canonical: str | None
) -> None:
    assert canonical_ip(text) == canonical


def test_the_simulator_is_reached_on_its_port_on_loopback_only() -> None:
    policy = EgressPolicy([], PRODUCTION, "127.0.0.1:8787", "127.0.0.1:9000")
    assert policy.verdict("127.0.0.1", 8787) is None
    assert policy.verdict("127.0.0.1", 9000) is None
    for host, port in [("127.0.0.1", 5678), ("127.0.0.2", 8787), ("0.0.0.0", 8787)]:
        verdict = policy.verdict(host, port)
        assert verdict is not None and verdict[0] == "egress_not_allowed", (host, port)
    assert policy.verdict("192.0.2.2", 8787) is not None  # this machine's other address


def test_a_loopback_entry_opens_only_its_port() -> None:
    policy = EgressPolicy(["localhost:8080"], [], "127.0.0.1:8787")
    assert policy.verdict("127.0.0.1", 8080) is None
    assert policy.verdict("::1", 8080) is None
    assert policy.verdict("127.0.0.1", 8081) is not None


def test_an_allowed_name_opens_its_addresses_on_its_ports_never_loopback() -> None:
    policy = EgressPolicy(["any.example", "one.example:443"], [], "127.0.0.1:8787")
    learnt = policy.learn("any.example", ["203.0.113.5", "127.0.0.1"])
    assert learnt == {("203.0.113.5", None)}
    assert policy.address_verdict("203.0.113.5", 22, learnt) is None
    assert policy.address_verdict("127.0.0.1", 22, learnt) is not None
    pinned = policy.learn("one.example", ["203.0.113.6"])
    assert policy.address_verdict("203.0.113.6", 443, pinned) is None
    assert policy.address_verdict("203.0.113.6", 80, pinned) is not None
    assert policy.verdict("one.example", 80) is not None  # by name, too


def test_production_names_are_refused_before_anything_else() -> None:
    policy = EgressPolicy(["*.powerx.io"], PRODUCTION, "127.0.0.1:8787")
    verdict = policy.verdict("api.powerx.io", 443)
    assert verdict is not None and verdict[0] == "production_host"


@pytest.mark.parametrize("entry", ["localhost", "127.0.0.1", "127.0.0.2", "0.0.0.0"])
def test_a_manifest_names_a_loopback_service_with_its_port(entry: str) -> None:
    base = (
        "id: com.test.p\nname: T\nversion: 1.0.0\nruntime: python3.11\nentry: app.py:app\n"
        "host:\n  api: '>=2.3 <3'\n"
    )
    with pytest.raises(PowerXError) as refused:
        parse_manifest(base + f"egress: ['{entry}']\n")
    assert refused.value.code == "manifest_invalid"
    assert "needs a port" in refused.value.problems[0].message
    assert parse_manifest(base + f"egress: ['{entry}:8080']\n").egress == [f"{entry}:8080"]
    assert parse_manifest(base + "egress: ['127.example.com']\n").egress == ["127.example.com"]
