"""A plugin that logs secrets: none of them may appear unmasked in the log stream, the
store, the CLI or the simulator's own output."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from powerx.testing import wait_until
from tests.conftest import RunningSimulator, Workspace, python_manifest, write_plugin

PLUGIN_ID = "com.test.leaky"
SECRETS = [
    "hunter2-secret",
    "abcDEF123456.tokenpart",
    "jane.doe",
    "pw-structured-77",
    "bob.smith",
    "tok_abcdef987654",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLXBhcnQ",
    "s3cr3tpass",
]
LEAKY_APP = """
import json, logging, sys
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def home(request):
    print("login attempt password=hunter2-secret", flush=True)
    print("calling upstream with Authorization: Bearer abcDEF123456.tokenpart", flush=True)
    print("mail from jane.doe@example.com", flush=True)
    print(json.dumps({"level": "warning", "msg": "user login", "password": "pw-structured-77",
                      "email": "bob.smith@example.org", "attempt": 3}), flush=True)
    print("session jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLXBhcnQ", flush=True)
    print("db at postgres://app:s3cr3tpass@db.internal:5432/app", flush=True)
    print("token: tok_abcdef987654", file=sys.stderr, flush=True)
    return JSONResponse({"ok": True})

app = Starlette(routes=[Route("/", home)])
"""


def sse_records(simulator: RunningSimulator) -> list[dict[str, Any]]:
    response = simulator.get(
        f"/internal/debug/logs?plugin={PLUGIN_ID}&follow=0&tail=500",
        headers=simulator.debug_headers(),
    )
    assert response.status_code == 200, response.text
    return [
        json.loads(line[len("data: ") :])
        for line in response.text.splitlines()
        if line.startswith("data: ")
    ]


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked into {where}"


def test_secrets_are_masked_everywhere_logs_go(
    workspace: Workspace, start_simulator: Any, tmp_path: Path
) -> None:
    workspace.login()
    plugin = write_plugin(tmp_path / "leaky", python_manifest(PLUGIN_ID), {"app.py": LEAKY_APP})
    simulator: RunningSimulator = start_simulator([plugin])
    assert simulator.get(f"/plugins/{PLUGIN_ID}/").status_code == 200

    def all_seven_lines() -> list[dict[str, Any]]:
        records = sse_records(simulator)
        printed = [r for r in records if r["stream"] in {"stdout", "stderr"}]
        return records if len(printed) >= 7 else []

    records = wait_until(all_seven_lines, 15)
    streamed = json.dumps(records)
    assert_no_secret(streamed, "the log stream")
    messages = " | ".join(str(r["message"]) for r in records)
    # Masked, not dropped: the lines are there with their secrets replaced.
    assert "password=***" in messages
    assert "Bearer ***" in messages
    assert "***@example.com" in messages
    assert "app:***@db.internal" in messages
    structured = next(r for r in records if r["message"] == "user login")
    assert structured["level"] == "warning"
    assert structured["fields"]["password"] == "***"
    assert structured["fields"]["attempt"] == 3
    access = [r for r in records if r["stream"] == "access"]
    assert access and access[0]["latency_ms"] is not None
    assert access[0]["tenant"] and access[0]["version"] == "1.0.0"

    # The CLI (through the same stream).
    cli = workspace.powerx("logs", PLUGIN_ID, "--json", "--tail", "500")
    assert cli.returncode == 0, cli.stderr
    assert "user login" in cli.stdout
    assert_no_secret(cli.stdout + cli.stderr, "`powerx logs`")

    # The store on disk (records are flushed every half second).
    def stored_logs() -> list[str]:
        with sqlite3.connect(workspace.state_dir / "telemetry.db") as connection:
            return [row[0] for row in connection.execute("SELECT record FROM logs")]

    assert wait_until(lambda: any("user login" in row for row in stored_logs()), 10)
    stored = stored_logs()
    assert_no_secret("\n".join(stored), "the telemetry store")

    # The simulator's own terminal output.
    out, err = simulator.stop()
    assert "login attempt" in out + err
    assert_no_secret(out + err, "the simulator's output")

    # With the simulator gone, `powerx logs` reads what it stored.
    after = workspace.powerx("logs", PLUGIN_ID, "--json", "--tail", "500")
    assert after.returncode == 0, after.stderr
    assert "showing stored records" in after.stderr
    assert "user login" in after.stdout
    assert_no_secret(after.stdout, "`powerx logs` after the simulator stopped")


def test_logs_command_rejects_an_unknown_level(workspace: Workspace) -> None:
    workspace.login()
    result = workspace.powerx("logs", "--level", "loud")
    assert result.returncode == 1
    assert "invalid_level" in result.stderr
    assert "Traceback" not in result.stderr


def test_logs_follow_stops_cleanly_when_the_simulator_stops(
    workspace: Workspace, start_simulator: Any, tmp_path: Path
) -> None:
    workspace.login()
    plugin = write_plugin(tmp_path / "leaky", python_manifest(PLUGIN_ID), {"app.py": LEAKY_APP})
    simulator: RunningSimulator = start_simulator([plugin])
    import subprocess
    import sys

    followed = tmp_path / "followed.jsonl"  # read while the follower runs
    with followed.open("w") as out:
        follower = subprocess.Popen(
            [sys.executable, "-m", "powerx.cli.main", "logs", PLUGIN_ID, "--follow", "--json"],
            cwd=workspace.root,
            env=workspace.env,
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert simulator.get(f"/plugins/{PLUGIN_ID}/").status_code == 200
    # It streams the recent records, then new ones: the request's lines arrive either way.
    wait_until(
        followed.read_text, 20, accept=lambda text: "user login" in text, what="the log line"
    )
    started = time.monotonic()
    simulator.stop()
    _, err = follower.communicate(timeout=20)
    assert time.monotonic() - started < 20
    assert "Traceback" not in err
