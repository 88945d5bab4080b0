"""What the CLI prints, piped and in a terminal: plugin text as written, whole lines,
whole ids; `--json` lists one object per line; every command's --help has examples."""

from __future__ import annotations

import json
import os
import pty
import re
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from powerx.testing import wait_until
from tests.conftest import (
    HELLO_PYTHON,
    PYTHON_APP,
    Workspace,
    python_manifest,
    write_plugin,
)

# A line as Python's logging writes it (level:logger:message) with text rich would read
# as an emoji code and as markup, long enough to be wrapped at any terminal width.
LOG_LINE = "INFO:notes:saved [bold]draft[/bold] :smile: " + " ".join(
    f"word{i:03d}" for i in range(36)
)
LOGGING_APP = f"""
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def home(request):
    print({LOG_LINE!r}, flush=True)
    return JSONResponse({{"ok": True}})

app = Starlette(routes=[Route("/", home)])
"""
LONG_ID = "com.test.a-plugin-with-an-identifier-long-enough-to-fill-a-table"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_piped_logs_keep_each_plugin_line_whole_and_as_written(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    assert len(LOG_LINE) >= 300
    workspace.login()
    plugin = write_plugin(tmp_path / "notes", python_manifest(), {"app.py": LOGGING_APP})
    simulator = start_simulator([plugin])
    assert simulator.get("/plugins/com.test.plugin/").status_code == 200
    output = wait_until(
        lambda: workspace.powerx("logs", "com.test.plugin", "--tail", "50").stdout,
        timeout_s=20,
        accept=lambda text: "word035" in text,
        what="word035 in the logs",
    )
    lines = [line for line in output.splitlines() if "word035" in line]
    assert len(lines) == 1, output
    assert lines[0].endswith(LOG_LINE), lines[0]  # one line, no emoji, no markup eaten
    assert "\x1b[" not in output[0]  # piped: no colour codes


def status_env(workspace: Workspace, columns: int) -> dict[str, str]:
    return {**workspace.env, "COLUMNS": str(columns)}


def run_in_terminal(args: list[str], env: dict[str, str], cwd: Path, columns: int) -> str:
    """Run the real CLI with a terminal (a pty) of ``columns`` columns as its stdout."""
    import fcntl
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    terminal_env = {k: v for k, v in env.items() if k not in {"COLUMNS", "NO_COLOR"}}
    process = subprocess.Popen(
        [sys.executable, "-m", "powerx.cli.main", *args],
        stdout=follower,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env={**terminal_env, "TERM": "xterm-256color"},
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the process closed its end of the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert process.wait(timeout=60) == 0, process.stderr.read() if process.stderr else ""
    return ANSI.sub("", b"".join(chunks).decode())


def test_host_status_shows_whole_ids_piped_and_in_a_terminal(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    plugin = write_plugin(
        tmp_path / "long", python_manifest(plugin_id=LONG_ID), {"app.py": PYTHON_APP}
    )
    start_simulator([plugin])
    piped = subprocess.run(
        [sys.executable, "-m", "powerx.cli.main", "host", "status"],
        cwd=workspace.root,
        env=status_env(workspace, 80),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    row = next(line for line in piped.stdout.splitlines() if LONG_ID in line)
    assert "running" in row and "…" not in piped.stdout
    shown = run_in_terminal(["host", "status"], workspace.env, workspace.root, columns=100)
    assert LONG_ID in shown, shown
    assert "…" not in shown


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line one JSON object (an array or a pretty-printed object fails here)."""
    objects = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(o, dict) for o in objects), text
    return objects


def test_json_lists_print_one_object_per_line(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    simulator = start_simulator([HELLO_PYTHON])
    plugin = "com.example.hello-python"
    for line in (16, 17):
        added = simulator.request(
            "POST",
            f"/internal/debug/breakpoints/{plugin}",
            json={"file": "app.py", "line": line, "kind": "snapshot"},
            headers=simulator.debug_headers(),
        )
        assert added.status_code in (200, 201), added.text
    commands: dict[str, list[str]] = {
        "audit": ["audit", "list", "--json"],
        "doctor": ["doctor", "--json", str(HELLO_PYTHON)],
        "breakpoints": ["debug", "breakpoints", plugin, "--json"],
        "logs": ["logs", plugin, "--json"],
    }
    listed = {}
    for name, args in commands.items():
        result = workspace.powerx(*args)
        assert result.returncode == 0, (name, result.stderr)
        listed[name] = json_lines(result.stdout)
    assert any(row["action"] == "plugin.mount" for row in listed["audit"])
    assert {check["name"] for check in listed["doctor"]} >= {"python", "login", "port"}
    assert sorted(bp["line"] for bp in listed["breakpoints"]) == [16, 17]


def command_paths() -> Iterator[list[str]]:
    import typer

    from powerx.cli.main import app

    def walk(command: Any, path: list[str]) -> Iterator[list[str]]:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield path

    yield from walk(typer.main.get_command(app), [])


@pytest.mark.parametrize("command", [" ".join(p) for p in command_paths()])
def test_every_command_has_help_with_an_example(workspace: Workspace, command: str) -> None:
    result = workspace.powerx(*command.split(), "--help")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^\s*Examples?:\s*$", result.stdout, re.MULTILINE), result.stdout
    after = result.stdout.split("Example", 1)[1]
    assert "powerx " + command.split()[0] in after, result.stdout
