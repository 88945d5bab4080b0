"""Telemetry, metrics, events, alerts, audit and reconciliation, with a real simulator,
real plugin processes and real file edits picked up by the watcher."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from powerx.testing import wait_until
from tests.conftest import HELLO_PYTHON, RunningSimulator, Workspace, python_manifest, write_plugin

PY_ID = "com.example.hello-python"


@pytest.fixture(autouse=True)
def logged_in(workspace: Workspace) -> None:
    workspace.login()


class EventCollector:
    """Reads the SSE stream in a thread, as a dashboard or a script would."""

    def __init__(self, simulator: RunningSimulator, last_event_id: int | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.ids: list[int] = []
        self._stop = threading.Event()
        headers = simulator.debug_headers()
        if last_event_id is not None:
            headers["last-event-id"] = str(last_event_id)
        self._connected = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(simulator.url + "/internal/debug/events", headers), daemon=True
        )
        self._thread.start()
        assert self._connected.wait(10), "the event stream did not open"

    def _run(self, url: str, headers: dict[str, str]) -> None:
        timeout = httpx.Timeout(10.0, read=None)
        with httpx.stream("GET", url, headers=headers, timeout=timeout, trust_env=False) as resp:
            assert resp.status_code == 200
            self._connected.set()
            event: dict[str, Any] = {}
            for line in resp.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("id: "):
                    event["id"] = int(line[4:])
                elif line.startswith("event: "):
                    event["type"] = line[7:]
                elif line.startswith("data: "):
                    event["data"] = json.loads(line[6:])
                elif not line and "type" in event:
                    self.events.append(event)
                    self.ids.append(event["id"])
                    event = {}

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def stop(self) -> None:
        self._stop.set()


def summary(simulator: RunningSimulator) -> dict[str, Any]:
    response = simulator.get("/internal/debug/telemetry/summary", headers=simulator.debug_headers())
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def save(path: Path, text: str) -> None:
    """One save, one watch event: written beside the plugin, then renamed over the file.
    A plain write (truncate, then write) can reach the watcher as two batches, and the
    second reloads what the first pushed ('unchanged'), one reload more than saves."""
    staged = path.parent.parent / f".{path.name}.staged"
    staged.write_text(text)
    os.replace(staged, path)


def set_greeting(app: Path, text: str, tail: str = "") -> None:
    lines = [
        f'GREETING = "{text}"' if line.startswith("GREETING =") else line
        for line in app.read_text().splitlines()
        if not line.startswith("raise ")
    ]
    save(app, "\n".join(lines) + "\n" + tail)


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_twenty_reloads_are_counted_streamed_audited_and_reconciled(
    workspace: Workspace, start_simulator: Any, tmp_path: Path
) -> None:
    plugin = tmp_path / "hello-python"
    shutil.copytree(HELLO_PYTHON, plugin)
    app, manifest = plugin / "app.py", plugin / "plugin.yaml"
    good_manifest = manifest.read_text()
    simulator: RunningSimulator = start_simulator([plugin], "--watch")  # returns once armed
    stream = EventCollector(simulator)

    expected = {"ok": 0, "failed": 0, "blocked": 0}
    reasons: dict[str, int] = {}
    for number in range(20):
        if number % 6 == 5:  # a syntax error: the client's build fails, nothing is uploaded
            save(app, app.read_text().replace("GREETING =", "GREETING = (", 1))
            outcome, reason = "failed", "build_failed"
        elif number == 8:  # a crash at import: the server's new generation fails to start
            set_greeting(app, f"edit {number}", "raise RuntimeError('boom at import')\n")
            outcome, reason = "failed", "plugin_start_failed"
        elif number == 13:  # the range excludes the image: blocked with version_mismatch
            save(manifest, good_manifest.replace('">=2.3 <3"', '">=3"'))
            outcome, reason = "blocked", "version_mismatch"
        elif number == 14:  # the range restored: a manifest edit reloads like code
            save(manifest, good_manifest + f"# edit {number}\n")
            outcome, reason = "ok", ""
        else:
            set_greeting(app, f"edit {number}")
            outcome, reason = "ok", ""
        expected[outcome] += 1
        if reason:
            reasons[reason] = reasons.get(reason, 0) + 1
        wait_until(
            lambda: summary(simulator),
            20,
            accept=lambda found: all(found[k] == v for k, v in expected.items()),
            what=f"reload {number} ({outcome}) to be recorded",
        )
        # One save per reload: a reload is recorded once it has ended (its upload handled,
        # or its build failed), so the next save starts a reload of its own.
    data = summary(simulator)
    assert data["failures_by_reason"].get("version_mismatch") == 1
    failed_reasons = {k: v for k, v in data["failures_by_reason"].items()}
    assert failed_reasons.get("build_failed") == reasons["build_failed"]
    assert sum(failed_reasons.values()) == expected["failed"] + expected["blocked"]

    # /metrics parses and agrees with what happened.
    metrics = simulator.get("/metrics", headers=simulator.debug_headers())
    assert metrics.status_code == 200
    samples = metric_samples(metrics.text)
    for status, count in expected.items():
        assert samples.get(("debug_hot_reload_total", (("plugin", PY_ID), ("status", status)))) == (
            count
        ), status
    assert samples[("debug_host_version_mismatch_total", (("plugin", PY_ID),))] == 1
    for reason, count in failed_reasons.items():
        assert samples[("debug_hot_reload_failure_total", (("reason", reason),))] == count
    total_histogram = samples[
        ("debug_hot_reload_duration_ms_count", (("phase", "total"), ("plugin", PY_ID)))
    ]
    assert total_histogram == 20

    # The SSE stream delivered every reload event exactly once, in order.
    wait_until(lambda: len(stream.of_type("plugin.debug.hot_reload")) >= 20, 20, what="20 events")
    reload_events = stream.of_type("plugin.debug.hot_reload")
    assert len(reload_events) == 20
    assert len({e["data"]["id"] for e in reload_events}) == 20
    assert stream.ids == sorted(set(stream.ids))
    statuses = [e["data"]["status"] for e in reload_events]
    assert statuses.count("ok") == expected["ok"]
    assert {"plugin", "tenant", "version", "digest", "status", "duration_ms", "reason"} <= set(
        reload_events[0]["data"]
    )
    stream.stop()

    # The audit chain verifies, and reconciliation finds nothing to repair.
    verified = workspace.powerx("audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    clean = workspace.powerx("telemetry", "reconcile", "--json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert json.loads(clean.stdout)["differences"] == []

    # A deleted telemetry row is found, then repaired from the audit row.
    db = workspace.state_dir / "telemetry.db"
    with sqlite3.connect(db) as connection:
        victim = connection.execute(
            "SELECT id FROM reloads WHERE status = 'ok' ORDER BY ts LIMIT 1"
        ).fetchone()[0]
        connection.execute("DELETE FROM reloads WHERE id = ?", (victim,))
    found = workspace.powerx("telemetry", "reconcile", "--json")
    assert found.returncode == 1
    differences = json.loads(found.stdout)["differences"]
    assert [(d["ref"], d["kind"]) for d in differences] == [(victim, "missing_in_telemetry")]
    fixed = workspace.powerx("telemetry", "reconcile", "--fix", "--json")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert json.loads(fixed.stdout)["repaired"] == 1
    again = workspace.powerx("telemetry", "reconcile", "--json")
    assert json.loads(again.stdout)["differences"] == []

    # Editing an audit row is detected and the row is named.
    with sqlite3.connect(workspace.state_dir / "audit.db") as connection:
        seq = connection.execute(
            "SELECT seq FROM audit WHERE action = 'reload.blocked' LIMIT 1"
        ).fetchone()[0]
        connection.execute(
            "UPDATE audit SET details = ? WHERE seq = ?", ('{"reason":"nothing to see"}', seq)
        )
    tampered = workspace.powerx("audit", "verify")
    assert tampered.returncode == 1
    assert f"row {seq}" in tampered.stderr + tampered.stdout


def test_event_stream_resumes_after_last_event_id(
    workspace: Workspace, start_simulator: Any, tmp_path: Path
) -> None:
    plugin = tmp_path / "hello-python"
    shutil.copytree(HELLO_PYTHON, plugin)
    simulator: RunningSimulator = start_simulator([plugin], "--watch")
    first = EventCollector(simulator, last_event_id=0)
    for number in range(3):
        set_greeting(plugin / "app.py", f"resume {number}")
        wait_until(lambda n=number: summary(simulator)["ok"] == n + 1, 20, what="reload")
    wait_until(lambda: len(first.of_type("plugin.debug.hot_reload")) == 3, 20, what="3 events")
    first.stop()
    seen = first.ids
    resume_after = first.of_type("plugin.debug.hot_reload")[0]["id"]
    second = EventCollector(simulator, last_event_id=resume_after)
    wait_until(lambda: second.ids and second.ids[-1] >= seen[-1], 20, what="the replay")
    second.stop()
    assert second.ids[: len([i for i in seen if i > resume_after])] == [
        i for i in seen if i > resume_after
    ]
    assert all(i > resume_after for i in second.ids)


def test_repeated_mismatches_raise_an_alert_that_clears(
    workspace: Workspace, start_simulator: Any, tmp_path: Path
) -> None:
    config = tmp_path / "sim.yaml"
    config.write_text(
        "observability:\n  alerts:\n    mismatch_count: 3\n    mismatch_window_s: 2\n"
        "    failure_min_reloads: 100\n"
    )
    plugin = write_plugin(
        tmp_path / "plug",
        python_manifest(),
        {"app.py": "from starlette.applications import Starlette\napp = Starlette()\n"},
    )
    simulator: RunningSimulator = start_simulator([plugin], "--config", str(config))
    stream = EventCollector(simulator)
    from tests.integration.test_hot_reload import push  # one way to push, shared

    (plugin / "powerx.plugin.yaml").write_text(python_manifest(api=">=3"))
    for _ in range(3):
        assert push(simulator, plugin).status_code == 409
    alerts = simulator.get("/internal/debug/alerts", headers=simulator.debug_headers()).json()
    assert [a["name"] for a in alerts["alerts"]] == ["repeated_version_mismatch"]
    assert "com.test.plugin" in alerts["alerts"][0]["message"]
    # The window is 2 s: with no new mismatch the alert clears on its own.
    wait_until(
        lambda: simulator.get("/internal/debug/alerts", headers=simulator.debug_headers()).json(),
        10,
        accept=lambda found: not found["alerts"],
        what="the alert to clear",
    )
    wait_until(
        lambda: len(stream.of_type("plugin.debug.alert")) == 2, 20, what="raise + clear events"
    )
    stream.stop()
    assert [e["data"]["state"] for e in stream.of_type("plugin.debug.alert")] == [
        "raised",
        "cleared",
    ]


def test_events_reach_a_webhook_despite_a_failing_first_attempt(
    workspace: Workspace, start_simulator: Any, tmp_path: Path
) -> None:
    received: list[dict[str, Any]] = []
    attempts = {"count": 0}

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            attempts["count"] += 1
            body = self.rfile.read(int(self.headers["content-length"]))
            if attempts["count"] == 1:
                self.send_response(503)  # the first delivery fails and must be retried
            else:
                received.append(json.loads(body))
                self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = tmp_path / "sim.yaml"
        config.write_text(
            f"observability:\n  webhook_url: http://127.0.0.1:{server.server_port}/hook\n"
        )
        plugin = tmp_path / "hello-python"
        shutil.copytree(HELLO_PYTHON, plugin)
        start_simulator([plugin], "--watch", "--config", str(config))
        set_greeting(plugin / "app.py", "to the webhook")
        wait_until(
            lambda: any(e["type"] == "plugin.debug.hot_reload" for e in received),
            20,
            what="the reload event at the webhook",
        )
        ids = [e["id"] for e in received]
        assert ids == sorted(set(ids)), "delivered in order, once each"
        assert attempts["count"] >= len(received) + 1
    finally:
        server.shutdown()


def test_telemetry_rejects_bad_reports_without_storing_them(
    workspace: Workspace, start_simulator: Any, tmp_path: Path
) -> None:
    plugin = tmp_path / "hello-python"
    shutil.copytree(HELLO_PYTHON, plugin)
    simulator: RunningSimulator = start_simulator([plugin])
    bad = simulator.request(
        "POST",
        "/internal/debug/telemetry",
        json={"kind": "reload", "plugin": "", "latency_ms": -3, "colour": "red"},
        headers=simulator.debug_headers(),
    )
    assert bad.status_code == 422
    body = bad.json()
    assert body["error"] == "invalid_telemetry"
    assert {p["where"] for p in body["problems"]} >= {"plugin", "latency_ms", "colour"}
    unauthenticated = simulator.request(
        "POST", "/internal/debug/telemetry", json={"kind": "reload", "plugin": PY_ID}
    )
    assert unauthenticated.status_code == 401
    good = simulator.request(
        "POST",
        "/internal/debug/telemetry",
        json={"kind": "breakpoint_sync", "plugin": PY_ID, "set": 3, "verified": 2, "replay_ms": 4},
        headers=simulator.debug_headers(),
    )
    assert good.status_code == 202, good.text
    samples = metric_samples(simulator.get("/metrics", headers=simulator.debug_headers()).text)
    assert samples[("debug_breakpoint_sync_total", (("kind", "set"), ("plugin", PY_ID)))] == 3
    assert samples[("debug_breakpoint_sync_total", (("kind", "verified"), ("plugin", PY_ID)))] == 2
    assert summary(simulator)["reloads"] == 0
