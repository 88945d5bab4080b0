"""Go backend plugins (examples/hello-go, PowerXPluginBase's layout): built with the real
`go build`, run as PowerX runs them (in the sandbox and outside it), reloaded on save
with no failed request, and a compile error keeps the old generation serving."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from powerx.bundling import BuildSession
from powerx.config import ContextSigning, Identity
from powerx.host.identity import ContextSigner
from powerx.host.programs import free_port
from powerx.testing import wait_until
from tests.conftest import EXAMPLES, RunningSimulator, Workspace
from tests.integration.test_backend_plugins import reload_while_a_client_loops, set_line
from tests.integration.test_hot_reload import copy_example

HELLO_GO = EXAMPLES / "hello-go"
GO_ID = "com.example.hello-go"
HELLO = f"/_p/{GO_ID}/api/v1/hello"
MAIN_GO = Path("backend/cmd/plugin/main.go")


def set_greeting(plugin: Path, text: str) -> None:
    set_line(plugin / MAIN_GO, "const greeting =", f'const greeting = "{text}"')


def start_go(
    workspace: Workspace, start_simulator: Any, tmp_path: Path, *extra: str
) -> tuple[RunningSimulator, Path]:
    workspace.login()
    plugin = copy_example(HELLO_GO, tmp_path / "hello-go")
    simulator: RunningSimulator = start_simulator([plugin], *extra)
    return simulator, plugin


def hello(simulator: RunningSimulator) -> dict[str, Any]:
    response = simulator.get(HELLO)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("sandbox", ["auto", "off"])
def test_go_example_answers_for_the_signed_tenant_and_calls_the_host_api(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, sandbox: str
) -> None:
    workspace.env["POWERX_SANDBOX"] = sandbox
    simulator, plugin = start_go(workspace, start_simulator, tmp_path)
    body = hello(simulator)
    # The tenant and user of the developer identity, from the JWT the simulator signed.
    assert body == {**body, "greeting": "hello from go", "tenant": 1, "user": 1, "via": "jwt"}
    contacts = simulator.get(f"/_p/{GO_ID}/api/v1/contacts")
    assert contacts.status_code == 200, contacts.text
    assert contacts.json()["contacts"] > 0 and contacts.json()["first_contact"]
    status = simulator.plugin_status(GO_ID)
    assert status["launcher"] == "program" and status["state"] == "running"
    assert status["contained"] is (sandbox == "auto")
    assert (plugin / "backend" / "bin" / "plugin").is_file()  # built where plugin.yaml says
    # Go's build cache lives in the DevKit's state folder, kept for the next build.
    assert any((workspace.state_dir / "build" / "go-cache").iterdir())


@pytest.fixture
def go_binary(tmp_path: Path) -> Path:
    plugin = copy_example(HELLO_GO, tmp_path / "hello-go")
    session = BuildSession(plugin, tmp_path / "state" / "build" / "hello-go")
    session.build()
    return plugin / "backend" / "bin" / "plugin"


@pytest.fixture
def running_binary(go_binary: Path) -> Iterator[tuple[str, ContextSigner]]:
    """The example's binary, started with what the simulator hands a plugin."""
    signer = ContextSigner({"dev": Identity(tenant_id=7, user_id=42)}, "dev", ContextSigning())
    port = free_port()
    env = {"PORT": str(port), "POWERX_PLUGIN_ID": GO_ID, **signer.plugin_environment(GO_ID)}
    process = subprocess.Popen([str(go_binary)], env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(url + "/healthz", trust_env=False).status_code == 200
        except httpx.TransportError:
            return False

    try:
        assert wait_until(up)
        yield url, signer
    finally:
        process.terminate()
        process.wait(10)


def test_go_example_verifies_the_tenant_context_as_powerxpluginbase_does(
    running_binary: tuple[str, ContextSigner],
) -> None:
    """Bearer HS256 JWT (issuer, audience plugin:<id>, expiry with 60 s leeway) first, then
    X-PowerX-CTX with its hex HMAC over the base64 text, at most 300 s old; else 401."""
    url, signer = running_binary
    identity = signer.identities["dev"]
    other = ContextSigner(
        signer.identities, "dev", ContextSigning(), secret="another-secret-of-thirty-two-bytes!"
    )
    now = int(time.time())

    def call(headers: dict[str, str]) -> httpx.Response:
        return httpx.get(url + "/api/v1/hello", headers=headers, trust_env=False)

    def ctx(context: str, signature: str) -> dict[str, str]:
        return {"x-powerx-ctx": context, "x-powerx-ctx-sig": signature}

    good = call(dict(signer.headers(identity, GO_ID)))
    assert good.status_code == 200 and good.json()["via"] == "jwt"
    assert (good.json()["tenant"], good.json()["user"]) == (7, 42)
    bad_jwt = {"authorization": f"Bearer {other.jwt(identity, GO_ID)}"}
    fallback = call({**bad_jwt, **ctx(*signer.signed_context(identity))})
    assert fallback.status_code == 200 and fallback.json()["via"] == "signed-context"
    refused = [
        {},
        bad_jwt,
        {"authorization": f"Bearer {signer.jwt(identity, 'com.example.other')}"},  # audience
        {"authorization": f"Bearer {signer.jwt(identity, GO_ID, now - 400)}"},  # expired
        ctx(*other.signed_context(identity)),  # signed with another secret
        ctx(*signer.signed_context(identity, now - 301)),  # older than 300 s
    ]
    context, signature = signer.signed_context(identity)
    tampered = json.loads(base64.b64decode(context)) | {"tid": 8}
    refused.append(ctx(base64.b64encode(json.dumps(tampered).encode()).decode(), signature))
    for headers in refused:
        response = call(headers)
        assert response.status_code == 401, headers
        assert response.json() == {"error": "Unauthorized"}
    # Within the JWT's 60 s leeway: still accepted.
    leeway = call({"authorization": f"Bearer {signer.jwt(identity, GO_ID, now - 330)}"})
    assert leeway.status_code == 200
    assert httpx.get(url + "/healthz", trust_env=False).json() == {"ok": True}


def test_go_save_reloads_with_no_failed_request_while_a_client_loops(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    simulator, plugin = start_go(workspace, start_simulator, tmp_path, "--watch")

    def save(text: str) -> None:  # the watcher reloads it
        set_greeting(plugin, text)
        simulator.wait_generation(GO_ID, int(text[1:]) + 1)

    answered, failures = reload_while_a_client_loops(simulator, HELLO, save, ["v1", "v2", "v3"])
    assert failures == []
    assert answered[0] == "hello from go" and {"v1", "v2", "v3"} <= set(answered)
    assert simulator.plugin_status(GO_ID)["generation"] == 4  # one generation per save

    def reload_lines() -> list[str]:
        lines = simulator.output().splitlines()
        return [line for line in lines if GO_ID in line and "gen " in line]

    reloads = wait_until(reload_lines, accept=lambda found: len(found) >= 3)  # printed after
    assert reloads and len(reloads) == 3 and all(line.startswith("✓") for line in reloads)


def test_go_compile_error_keeps_the_old_generation_and_names_file_line_column(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    simulator, plugin = start_go(workspace, start_simulator, tmp_path, "--watch")
    assert hello(simulator)["greeting"] == "hello from go"
    source = plugin / MAIN_GO
    text = source.read_text()
    broken_line = text.splitlines().index("func hello(w http.ResponseWriter, r *http.Request) {")
    source.write_text(text.replace("tenant, _ := auth.FromRequest(r)", "tenant := undefinedName"))
    where = f"backend/cmd/plugin/main.go:{broken_line + 2}:12"

    def failure() -> dict[str, Any] | None:
        found: dict[str, Any] | None = simulator.plugin_status(GO_ID)["failure"]
        return found

    recorded = wait_until(failure, timeout_s=30)
    assert recorded is not None and recorded["code"] == "build_failed"
    assert recorded["message"].startswith(f"Build error in {where}: undefined: undefinedName")
    assert simulator.plugin_status(GO_ID)["state"] == "stale"
    response = simulator.get(HELLO)
    assert response.status_code == 200 and response.json()["greeting"] == "hello from go"
    assert response.headers["x-powerx-stale"] == "build_failed; serving generation 1"
    # The reload line names it too, as the developer sees it in the terminal.
    assert wait_until(lambda: f"build_failed Build error in {where}" in simulator.output())
    status_text = workspace.powerx("host", "status").stdout
    assert where in status_text
    source.write_text(text)
    set_greeting(plugin, "fixed")
    simulator.wait_generation(GO_ID, 2)
    assert hello(simulator)["greeting"] == "fixed"
    assert simulator.plugin_status(GO_ID)["failure"] is None
