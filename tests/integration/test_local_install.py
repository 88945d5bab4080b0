"""PowerX's local-install endpoints (``/internal/plugins/local/install|reload``), called as
PowerX's ``px dev watch --host-api http://host/api`` calls them: JSON bodies, the token as
the bearer, under ``/api/internal/...``."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import HELLO_PYTHON, RunningSimulator, Workspace
from tests.integration.test_dev_protocol import data, problem
from tests.integration.test_hot_reload import PY_ID, copy_example, set_python_greeting


def host_api(simulator: RunningSimulator, token: str, path: str, body: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return httpx.post(
        f"{simulator.url}/api/internal/plugins/local/{path}",
        json=body,
        headers=headers,
        timeout=60,
        trust_env=False,
    )


def mismatches(simulator: RunningSimulator) -> float:
    metrics = simulator.get("/metrics", headers=simulator.debug_headers()).text
    found = re.search(
        rf'debug_host_version_mismatch_total{{plugin="{re.escape(PY_ID)}"}} (\S+)', metrics
    )
    return float(found.group(1)) if found else 0.0


def test_a_local_install_serves_the_folder_and_opens_a_session(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    simulator: RunningSimulator = start_simulator([])  # nothing mounted yet
    token = workspace.token()
    plugin = copy_example(HELLO_PYTHON, tmp_path / "p")

    installed = host_api(
        simulator,
        token,
        "install",
        {"tenantId": 101, "developerId": 2025, "artifactUri": plugin.as_uri(), "featureFlags": []},
    )
    assert installed.status_code == 201, installed.text
    session = data(installed)
    assert (session["status"], session["tenant_uuid"], session["generation"]) == (
        "active",
        "101",
        1,
    )
    assert httpx.get(session["devUrl"], trust_env=False).json()["greeting"] == "hello from python"

    # Its session reloads through the dev protocol with the token the install answered.
    set_python_greeting(plugin, "after install")
    reloaded = httpx.post(
        f"{simulator.url}/api/v1/internal/dev/plugins/reload",
        json={"sessionId": session["sessionId"]},
        headers={"Authorization": f"Bearer {session['reloadToken']}", "X-Reload-Id": "r-1"},
        timeout=60,
        trust_env=False,
    )
    assert reloaded.status_code == 200, reloaded.text
    assert simulator.get(f"/plugins/{PY_ID}/").json()["greeting"] == "after install"

    # The client's reports: a success is its latency; a version mismatch a failed reload.
    report = {"sessionId": session["sessionId"], "durationMs": 42, "sequence": 1, "success": True}
    accepted = host_api(simulator, token, "reload", report)
    assert accepted.status_code == 202  # as PowerX answers it (the client reads no body)
    assert (accepted.json()["code"], accepted.json()["data"]) == (202, {"result": "ok"})
    before = mismatches(simulator)
    refused = {**report, "success": False, "error": "manifest version mismatch: host 2.4"}
    assert host_api(simulator, token, "reload", refused).status_code == 202
    assert mismatches(simulator) == before + 1
    status = simulator.plugin_status(PY_ID)
    assert (status["state"], status["failure"]["code"]) == ("stale", "version_mismatch")
    assert simulator.get(f"/plugins/{PY_ID}/").json()["greeting"] == "after install"


def test_a_local_install_refuses_what_it_cannot_install(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    simulator: RunningSimulator = start_simulator([])
    token = workspace.token()
    packed = tmp_path / "plugin-bundle.zip"
    packed.write_bytes(b"PK\x03\x04")

    problem(host_api(simulator, "pxm_wrong", "install", {}), 401, "unauthenticated")
    problem(host_api(simulator, token, "install", {}), 422, "dev_invalid_body")
    for uri in ("https://example.com/p.pxp", "relative/folder", "file://elsewhere/p"):
        body = {"artifactUri": uri}
        problem(host_api(simulator, token, "install", body), 422, "local_install_uri_unsupported")
    zipped = {"artifactUri": packed.as_uri()}
    packed_refused = host_api(simulator, token, "install", zipped)
    problem(packed_refused, 422, "local_install_artifact_unsupported")
    missing = {"artifactUri": (tmp_path / "none").as_uri()}
    problem(host_api(simulator, token, "install", missing), 400, "plugin_not_found")
    unknown = {"sessionId": str(uuid.uuid4()), "success": True}
    problem(host_api(simulator, token, "reload", unknown), 404, "dev_session_not_found")
    assert simulator.status()["plugins"] == []
