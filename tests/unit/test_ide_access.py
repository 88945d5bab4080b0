"""Who may use an IDE debug port: the pure checks the inspector endpoint and the DAP
server apply (the attacks themselves are in tests/security/test_debug_ports.py)."""

from __future__ import annotations

import pytest

from powerx.debug.ide_access import (
    IdeAccess,
    new_secret,
    origin_allowed,
    secret_matches,
)
from powerx.local_names import local_host


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.1:5680",
        "localhost",
        "LOCALHOST:5680",
        "[::1]:5680",
        "::1",
        "127.9.9.9",
    ],
)
def test_loopback_addresses_and_localhost_are_local(host: str) -> None:
    assert local_host(host)


@pytest.mark.parametrize(
    "host",
    [
        None,
        "",
        "evil.example",
        "evil.example:5680",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
        "10.0.0.5:5680",
        "0.0.0.0",
        "[::1",
    ],
)
def test_names_a_page_could_rebind_and_other_machines_are_not_local(host: str | None) -> None:
    assert not local_host(host)


@pytest.mark.parametrize("origin", [None, "devtools://devtools", "DevTools://devtools "])
def test_no_origin_or_devtools_own_may_open_the_port(origin: str | None) -> None:
    assert origin_allowed(origin)


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://127.0.0.1:5680", "vscode-file://vscode-app"]
)
def test_any_page_origin_is_refused(origin: str) -> None:
    assert not origin_allowed(origin)


def test_only_the_exact_secret_matches() -> None:
    secret = new_secret()
    assert len(secret) >= 43 and secret != new_secret()
    assert secret_matches(secret, secret)
    for wrong in (secret[:-1], secret + "x", "", None, 42, [secret], secret.upper(), "\udcff"):
        assert not secret_matches(wrong, secret)


def test_the_urls_of_a_node_port_carry_the_secret_and_a_python_port_has_none() -> None:
    node = IdeAccess("com.x.node", "node18", "127.0.0.1", 5680, "s3cret", "/src/node")
    assert node.to_dict()["websocket"] == "ws://127.0.0.1:5680/s3cret/com.x.node"
    assert node.to_dict()["devtools"] == (
        "devtools://devtools/bundled/js_app.html?ws=127.0.0.1:5680/s3cret/com.x.node"
    )
    python = IdeAccess("com.x.py", "python3.11", "127.0.0.1", 5679, "s3cret").to_dict()
    assert python["secret"] == "s3cret" and "websocket" not in python
