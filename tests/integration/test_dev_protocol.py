"""PowerX's dev hot-load protocol against a real simulator and a real plugin, spoken the way
the px-plugin CLI speaks it (PowerXPlugin tools/cli/internal/devapi/client.go: the paths
under the ``/api/v1`` it adds to a ``--dev-api`` URL without a path, its headers and
bodies, its reading of PowerX's ``{code, message, data}`` envelope)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from powerx.testing import wait_until
from tests.conftest import EXAMPLES, HELLO_PYTHON, RunningSimulator, Workspace
from tests.integration.test_hot_reload import PY_ID, copy_example, set_python_greeting
from tests.integration.test_reload_gate import ImportGate, request_in_background


class PxPlugin:
    """What ``px-plugin dev --dev-api <url> --dev-api-token <token>`` sends."""

    def __init__(self, dev_api: str, api_token: str) -> None:
        # resolveDevAPIBaseWithPrefix: a URL without a path gets the default /api/v1.
        self.base = dev_api + "/api/v1" if urlsplit(dev_api).path in {"", "/"} else dev_api
        self.api_token = api_token
        self.reload_token = ""
        self.http = httpx.Client(timeout=60, trust_env=False)

    def _send(
        self, method: str, path: str, headers: dict[str, str], body: Any = None
    ) -> httpx.Response:
        sent = {"Content-Type": "application/json", "User-Agent": "px-plugin-go-cli/1.0"}
        # Go sends "Bearer " with an empty token as it is; httpx refuses the trailing space.
        sent.update({k: v.strip() for k, v in headers.items() if v.strip()})
        content = None if body is None else json.dumps(body)
        return self.http.request(method, self.base + path, headers=sent, content=content)

    def register(self, plugin_id: str, entry: Path, version: str = "1.0.0") -> httpx.Response:
        body = {
            "pluginId": plugin_id,
            "version": version,
            "entryPath": str(entry),
            "tenant": "acme",
            "tenantId": 101,
            "developerId": 2025,
            "metadata": {"backend.entry": ""},
        }
        headers = {"X-API-Key": self.api_token, "Authorization": f"Bearer {self.api_token}"}
        response = self._send("POST", "/internal/dev/plugins/register", headers, body)
        if response.status_code == 201:
            self.reload_token = data(response)["reloadToken"]  # SetReloadToken
        return response

    def reload(
        self, session_id: str, changed: Sequence[Path] = (), reload_id: str | None = None
    ) -> httpx.Response:
        body = {
            "sessionId": session_id,
            "reloadToken": self.reload_token,
            "bundleHash": uuid.uuid4().hex,
            "bundleSize": 1024,
            "buildDuration": 3,
            "strategy": "diff" if changed else "full",
            "changedFiles": [
                {"type": "modify", "path": str(p), "timestamp": "2026-12-01T10:00:00Z"}
                for p in changed
            ],
        }
        headers = {
            "Authorization": f"Bearer {self.reload_token}",
            "X-Reload-Id": reload_id or str(uuid.uuid4()),
        }
        return self._send("POST", "/internal/dev/plugins/reload", headers, body)

    def status(self, session_id: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.reload_token}"}
        return self._send("GET", f"/internal/dev/plugins/{session_id}", headers)

    def delete(self, session_id: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.api_token}", "X-API-Key": self.api_token}
        return self._send("DELETE", f"/internal/dev/plugins/register/{session_id}", headers)

    def close(self) -> None:
        self.http.close()


def data(response: httpx.Response) -> dict[str, Any]:
    """decodeAPIData: the envelope's code is 0, 200 or 201 and its data is the answer."""
    body = response.json()
    assert body["code"] in {0, 200, 201}, body
    assert body["data"], body
    return dict(body["data"])


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body = dict(response.json())
    assert (body["error"], body["code"], body["status"]) == (code, code, status), body
    assert body["message"] and body["detail"] and body["fix"], body
    return body


def started(workspace: Workspace, tmp_path: Path, start_simulator: Any) -> tuple[Any, Path]:
    workspace.login()
    plugin = copy_example(HELLO_PYTHON, tmp_path / "p")
    simulator: RunningSimulator = start_simulator([plugin])
    return simulator, plugin


def greeting(simulator: RunningSimulator) -> str:
    response = simulator.get(f"/plugins/{PY_ID}/")
    assert response.status_code == 200, response.text
    return str(response.json()["greeting"])


def serving_generation(simulator: RunningSimulator) -> int:
    return int(simulator.plugin_status(PY_ID)["generation"])


def test_px_plugin_registers_reloads_and_unregisters(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    simulator, plugin = started(workspace, tmp_path, start_simulator)
    cli = PxPlugin(simulator.url, workspace.token())
    registered = cli.register(PY_ID, plugin)
    assert registered.status_code == 201, registered.text
    session = data(registered)
    assert uuid.UUID(session["sessionId"]).version == 4
    assert session["reloadToken"] and session["status"] == "active"
    expires = datetime.fromisoformat(session["expiresAt"]).timestamp()
    assert 890 < expires - time.time() <= 900  # PowerX's 15 minutes
    assert httpx.get(session["devUrl"], trust_env=False).json()["greeting"] == "hello from python"
    # The older client reads the same answer at the top level.
    assert registered.json()["sessionId"] == session["sessionId"]

    set_python_greeting(plugin, "reloaded by px-plugin")
    reloaded = cli.reload(session["sessionId"], [plugin / "app.py"])
    assert reloaded.status_code == 200, reloaded.text
    answer = data(reloaded)
    assert answer["status"] == "success" and answer["generation"] == 2
    assert answer["reloadId"] == reloaded.headers["x-reload-id"]
    assert greeting(simulator) == "reloaded by px-plugin"

    state = data(cli.status(session["sessionId"]))
    assert (state["status"], state["reloadCount"], state["pluginId"]) == ("active", 1, PY_ID)
    assert state["lastReload"] and state["buildStats"]["successRate"] == 1.0

    ended = cli.delete(session["sessionId"])
    assert ended.status_code == 200, ended.text
    assert data(ended)["status"] == "terminated"
    assert data(cli.status(session["sessionId"]))["status"] == "terminated"
    set_python_greeting(plugin, "after the session")
    problem(cli.reload(session["sessionId"]), 410, "dev_session_ended")
    assert greeting(simulator) == "reloaded by px-plugin"  # the plugin keeps serving
    audit = simulator.get("/internal/debug/audit", headers=simulator.debug_headers()).json()
    actions = [r["action"] for r in audit["records"]]
    assert "dev.session.start" in actions and "dev.session.end" in actions
    cli.close()


def test_the_same_reload_id_reloads_once_and_answers_the_first_result_again(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    simulator, plugin = started(workspace, tmp_path, start_simulator)
    cli = PxPlugin(simulator.url, workspace.token())
    session_id = data(cli.register(PY_ID, plugin))["sessionId"]
    reload_id = str(uuid.uuid4())

    set_python_greeting(plugin, "first save")
    first = cli.reload(session_id, reload_id=reload_id)
    set_python_greeting(plugin, "second save")  # a replay must not build this
    again = cli.reload(session_id, reload_id=reload_id)

    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert again.json()["data"] == first.json()["data"]
    assert again.headers["x-reload-replayed"] == "true"
    assert "x-reload-replayed" not in first.headers
    assert greeting(simulator) == "first save"
    assert serving_generation(simulator) == 2
    assert data(cli.status(session_id))["reloadCount"] == 1

    # Sent twice at once (a retry racing the first try): still one reload.
    racing_id = str(uuid.uuid4())
    answers: list[httpx.Response] = []
    threads = [
        threading.Thread(target=lambda: answers.append(_reload_with(cli, session_id, racing_id)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert answers[0].json()["data"] == answers[1].json()["data"]
    assert serving_generation(simulator) == 3
    assert greeting(simulator) == "second save"
    assert data(cli.status(session_id))["reloadCount"] == 2
    cli.close()


def _reload_with(cli: PxPlugin, session_id: str, reload_id: str) -> httpx.Response:
    """One reload on a client of its own (httpx clients are not shared between threads)."""
    own = PxPlugin(cli.base, cli.api_token)
    own.reload_token = cli.reload_token
    try:
        return own.reload(session_id, reload_id=reload_id)
    finally:
        own.close()


def test_a_wrong_or_missing_reload_token_is_401_and_reloads_nothing(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    simulator, plugin = started(workspace, tmp_path, start_simulator)
    cli = PxPlugin(simulator.url, workspace.token())
    session_id = data(cli.register(PY_ID, plugin))["sessionId"]
    token = cli.reload_token
    set_python_greeting(plugin, "never served")

    cli.reload_token = "not-the-token"
    problem(cli.reload(session_id), 401, "dev_reload_token_invalid")
    cli.reload_token = workspace.token()  # the developer credential is not a reload token
    problem(cli.reload(session_id), 401, "dev_reload_token_invalid")
    cli.reload_token = ""
    problem(cli.reload(session_id), 401, "dev_reload_token_missing")
    # The token in the header is this session's, the one in the body is not.
    cli.reload_token = token
    mixed = cli._send(
        "POST",
        "/internal/dev/plugins/reload",
        {"Authorization": f"Bearer {token}", "X-Reload-Id": str(uuid.uuid4())},
        {"sessionId": session_id, "reloadToken": "forged"},
    )
    problem(mixed, 401, "dev_reload_token_invalid")
    # Nor does anyone read a session without its token or the credential.
    cli.reload_token = "not-the-token"
    problem(cli.status(session_id), 401, "unauthenticated")

    cli.reload_token = token
    assert data(cli.status(session_id))["reloadCount"] == 0
    assert serving_generation(simulator) == 1
    assert greeting(simulator) == "hello from python"
    cli.close()


def test_an_expired_session_is_refused(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.env["POWERX_DEV_SESSION_TTL_S"] = "1"
    simulator, plugin = started(workspace, tmp_path, start_simulator)
    cli = PxPlugin(simulator.url, workspace.token())
    session = data(cli.register(PY_ID, plugin))

    def expired() -> bool:
        return bool(data(cli.status(session["sessionId"]))["status"] == "expired")

    assert wait_until(expired, timeout_s=30, interval_s=0.05)
    set_python_greeting(plugin, "too late")
    body = problem(cli.reload(session["sessionId"]), 410, "dev_session_expired")
    assert body["sessionId"] == session["sessionId"]
    assert serving_generation(simulator) == 1
    # A new session may start at once: the expired one holds nothing.
    again = cli.register(PY_ID, plugin)
    assert again.status_code == 201, again.text
    cli.close()


def test_bad_input_is_refused_with_a_code_and_a_fix_before_any_session_exists(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    simulator, plugin = started(workspace, tmp_path, start_simulator)
    other = copy_example(HELLO_PYTHON, tmp_path / "other")
    manifest = other / "plugin.yaml"
    manifest.write_text(manifest.read_text().replace(PY_ID, "com.example.other"))
    cli = PxPlugin(simulator.url, workspace.token())
    path = "/internal/dev/plugins/register"
    credential = {"Authorization": f"Bearer {workspace.token()}"}

    problem(cli._send("POST", path, {}, {"pluginId": PY_ID}), 401, "unauthenticated")
    wrong = {"X-API-Key": "pxm_wrong"}
    problem(cli._send("POST", path, wrong, {"pluginId": PY_ID}), 401, "unauthenticated")
    problem(cli._send("POST", path, credential, ["not", "an", "object"]), 400, "dev_invalid_body")
    no_id = cli._send("POST", path, credential, {"version": "1"})
    missing = problem(no_id, 422, "dev_invalid_body")
    assert [p["where"] for p in missing["problems"]] == ["pluginId"]
    typed = problem(
        cli._send("POST", path, credential, {"pluginId": PY_ID, "developerId": "me"}),
        422,
        "dev_invalid_body",
    )
    assert typed["problems"][0]["where"] == "developerId"
    relative = {"pluginId": PY_ID, "entryPath": "p"}
    problem(cli._send("POST", path, credential, relative), 422, "dev_entry_invalid")
    nowhere = {"pluginId": PY_ID, "entryPath": str(tmp_path / "nowhere")}
    problem(cli._send("POST", path, credential, nowhere), 400, "plugin_not_found")
    # Valid JSON that is not UTF-8 (a lone surrogate) is a bad field, not a 500.
    surrogate = {"pluginId": PY_ID, "entryPath": "/tmp/\udcff"}
    problem(cli._send("POST", path, credential, surrogate), 422, "dev_invalid_body")
    elsewhere = problem(cli.register(PY_ID, other), 409, "plugin_mismatch")
    assert elsewhere["manifest_plugin"] == "com.example.other"
    reload_path = "/internal/dev/plugins/reload"
    bad_id = {"Authorization": "Bearer x", "X-Reload-Id": "no spaces allowed"}
    unknown = {"sessionId": str(uuid.uuid4())}
    problem(cli._send("POST", reload_path, bad_id, unknown), 400, "dev_reload_id_invalid")
    problem(cli._send("POST", reload_path, {}, {"sessionId": "42"}), 400, "dev_session_id_invalid")
    problem(cli._send("POST", reload_path, {}, unknown), 404, "dev_session_not_found")
    problem(cli.status(str(uuid.uuid4())), 404, "dev_session_not_found")

    listed = cli._send("GET", "/internal/dev/plugins/sessions?status=all", credential)
    assert data(listed)["items"] == []
    # The paths without /api/v1 (PowerX's mock, a --dev-api URL that names no prefix)
    # answer too; a second session of the same plugin is refused while one lives.
    at_root = PxPlugin(simulator.url, workspace.token())
    at_root.base = simulator.url
    assert at_root.register(PY_ID, plugin).status_code == 201
    conflict = problem(cli.register(PY_ID, plugin), 409, "dev_session_conflict")
    assert conflict["sessionId"]  # where px-plugin's describeRegisterFailure looks
    cli.close()
    at_root.close()


def test_the_protocol_keeps_the_simulator_s_host_and_origin_rules(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    simulator, plugin = started(workspace, tmp_path, start_simulator)
    token = workspace.token()
    body = {"pluginId": PY_ID, "entryPath": str(plugin)}
    for prefix in ("", "/api", "/api/v1"):
        url = f"{simulator.url}{prefix}/internal/dev/plugins/register"
        rebound = httpx.post(
            url,
            json=body,
            headers={"Authorization": f"Bearer {token}", "Host": "attacker.example"},
            trust_env=False,
        )
        assert (rebound.status_code, rebound.json()["error"]) == (421, "host_forbidden")
        cross_site = httpx.post(
            url,
            json=body,
            headers={"Authorization": f"Bearer {token}", "Origin": "https://evil.example"},
            trust_env=False,
        )
        assert (cross_site.status_code, cross_site.json()["error"]) == (403, "origin_forbidden")
    listed = simulator.get(
        "/api/v1/internal/dev/plugins/sessions", headers={"Authorization": f"Bearer {token}"}
    )
    assert data(listed)["items"] == []
    # Called as PowerX's own API is (no entryPath): the folder the plugin is mounted from.
    mounted = httpx.post(
        f"{simulator.url}/internal/dev/plugins/register",
        json={"pluginId": PY_ID, "developerId": 2025},
        headers={"Authorization": f"Bearer {token}"},
        trust_env=False,
    )
    assert mounted.status_code == 201, mounted.text
    listed = simulator.get(
        "/internal/dev/plugins/sessions?status=active", headers={"Authorization": f"Bearer {token}"}
    )
    [session] = data(listed)["items"]
    assert (session["entryPath"], session["developerId"]) == (str(plugin.resolve()), 2025)


def test_the_stream_shows_register_reload_and_unregister_as_they_happen(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    simulator, plugin = started(workspace, tmp_path, start_simulator)
    cli = PxPlugin(simulator.url, workspace.token())
    seen: list[dict[str, Any]] = []
    content_types: list[str] = []

    with httpx.Client(timeout=httpx.Timeout(60, read=None), trust_env=False) as client:
        headers = {"Authorization": f"Bearer {workspace.token()}"}
        stream = cli.base + "/internal/dev/plugins/stream"
        with client.stream("GET", stream, headers=headers) as sse:
            content_types.append(sse.headers["content-type"])

            def read() -> None:  # until the session's end is streamed
                for line in sse.iter_lines():
                    if line.startswith("data: "):
                        seen.append(json.loads(line[6:]))
                        if seen[-1]["type"] == "SessionTerminated":
                            return

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            session_id = data(cli.register(PY_ID, plugin))["sessionId"]
            set_python_greeting(plugin, "streamed")
            assert cli.reload(session_id).status_code == 200
            assert cli.delete(session_id).status_code == 200
            reader.join(30)

    # px-plugin's SSE client accepts exactly these content types.
    assert content_types[0] in {"text/event-stream", "text/event-stream; charset=utf-8"}
    assert [event["type"] for event in seen] == [
        "SessionStarted",
        "SessionReloaded",
        "SessionTerminated",
    ]
    assert {event["sessionId"] for event in seen} == {session_id}
    assert seen[1]["payload"]["success"] is True and seen[1]["payload"]["generation"] == 2

    # A reload token follows its own session only, and may resume with Last-Event-ID.
    other = data(cli.register(PY_ID, plugin))["sessionId"]
    with httpx.Client(timeout=30, trust_env=False) as client:
        headers = {"Authorization": f"Bearer {cli.reload_token}", "Last-Event-ID": "0"}
        stream = cli.base + "/internal/dev/plugins/stream"
        with client.stream("GET", stream, headers=headers) as sse:
            for line in sse.iter_lines():
                if line.startswith("data: "):
                    first = json.loads(line[6:])
                    break
    assert (first["type"], first["sessionId"]) == ("SessionStarted", other)
    cli.close()


def test_a_broken_build_keeps_the_old_generation_serving(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    simulator, plugin = started(workspace, tmp_path, start_simulator)
    cli = PxPlugin(simulator.url, workspace.token())
    session_id = data(cli.register(PY_ID, plugin))["sessionId"]
    app = plugin / "app.py"
    good = app.read_text()
    app.write_text(good + "\ndef broken(:\n")

    failed = cli.reload(session_id, [app])
    body = problem(failed, 400, "build_failed")
    assert (body["file"], body["line"]) == ("app.py", good.count("\n") + 2)
    assert (body["reloadId"], body["sessionId"]) == (failed.headers["x-reload-id"], session_id)
    reloads = simulator.get(
        "/internal/debug/telemetry/reloads", headers=simulator.debug_headers()
    ).json()["reloads"]
    assert any(r["id"] == body["reload_id"] and r["status"] == "failed" for r in reloads)
    assert greeting(simulator) == "hello from python"
    status = simulator.plugin_status(PY_ID)
    assert (status["generation"], status["state"]) == (1, "stale")
    assert status["failure"]["code"] == "build_failed"
    assert not status["watch"]["reload_pending"]  # nothing is held after the failure

    app.write_text(good.replace("hello from python", "fixed"))
    assert cli.reload(session_id, [app]).status_code == 200
    assert greeting(simulator) == "fixed"
    state = data(cli.status(session_id))
    assert (state["reloadCount"], state["failedReloads"]) == (2, 1)
    cli.close()


def test_a_request_during_a_protocol_reload_is_held_for_the_new_code(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    simulator, plugin = started(workspace, tmp_path, start_simulator)
    cli = PxPlugin(simulator.url, workspace.token())
    session_id = data(cli.register(PY_ID, plugin))["sessionId"]
    gate = ImportGate(simulator, PY_ID)
    set_python_greeting(plugin, "held for this")
    gate.install(plugin)
    reloads: list[httpx.Response] = []
    reloading = threading.Thread(target=lambda: reloads.append(_reload_with(cli, session_id, "r1")))
    reloading.start()
    gate.wait_importing()  # generation 2 imports; generation 1 still serves
    request, answers = request_in_background(simulator, f"/plugins/{PY_ID}/")
    simulator.wait_held(PY_ID)
    gate.release()
    request.join(60)
    reloading.join(60)
    assert reloads and reloads[0].status_code == 200, reloads
    assert answers and answers[0].json()["greeting"] == "held for this"
    assert answers[0].headers["x-powerx-generation"] == "2"
    assert int(answers[0].headers["x-powerx-held-ms"]) > 0
    cli.close()


def test_no_request_fails_while_px_plugin_reloads(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    simulator, plugin = started(workspace, tmp_path, start_simulator)
    cli = PxPlugin(simulator.url, workspace.token())
    session_id = data(cli.register(PY_ID, plugin))["sessionId"]
    failures: list[str] = []
    served = 0
    done = threading.Event()

    def load() -> None:
        nonlocal served
        with httpx.Client(base_url=simulator.url, trust_env=False, timeout=30) as client:
            while not done.is_set():
                response = client.get(f"/plugins/{PY_ID}/")
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:100]}")
                served += 1

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for version in range(10):
            set_python_greeting(plugin, f"px-plugin {version}")
            reloaded = cli.reload(session_id, [plugin / "app.py"])
            assert reloaded.status_code == 200, reloaded.text
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert served > 10  # requests really ran during the swaps
    assert greeting(simulator) == "px-plugin 9"
    assert serving_generation(simulator) == 11
    cli.close()


def test_px_plugin_mounts_and_reloads_a_powerx_backend_plugin_without_a_failed_request(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    """A plugin in PowerX's own format (plugin.yaml, a program on PORT): nothing is
    mounted until px-plugin's first reload, and no request fails across its reloads."""
    workspace.login()
    simulator: RunningSimulator = start_simulator([])
    plugin = copy_example(EXAMPLES / "hello-backend-python", tmp_path / "backend")
    plugin_id, hello = "com.example.hello-backend-python", "/_p/com.example.hello-backend-python"
    cli = PxPlugin(simulator.url, workspace.token())
    session_id = data(cli.register(plugin_id, plugin))["sessionId"]
    first = cli.reload(session_id)
    assert first.status_code == 200 and data(first)["generation"] == 1, first.text
    url = f"{hello}/api/v1/hello"
    assert simulator.get(url).json()["greeting"] == "hello from a backend"

    failures: list[str] = []
    served = 0
    done = threading.Event()

    def load() -> None:
        nonlocal served
        with httpx.Client(base_url=simulator.url, trust_env=False, timeout=30) as client:
            while not done.is_set():
                response = client.get(url)
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:100]}")
                served += 1

    loader = threading.Thread(target=load)
    loader.start()
    server = plugin / "server.py"
    try:
        for version in range(3):
            text = server.read_text().splitlines()
            text = [
                f'GREETING = "backend {version}"' if ln.startswith("GREETING =") else ln
                for ln in text
            ]
            server.write_text("\n".join(text) + "\n")
            reloaded = cli.reload(session_id, [server])
            assert reloaded.status_code == 200, reloaded.text
    finally:
        done.set()
        loader.join()
    assert failures == []
    assert served > 3
    assert simulator.get(url).json()["greeting"] == "backend 2"
    assert simulator.plugin_status(plugin_id)["generation"] == 4
    cli.close()
