"""Hotkeys while `powerx host start` runs in a terminal (a real pty): listed on one line,
each key does what it says; with output piped there is no hotkey line and stdin is not
read."""

from __future__ import annotations

import sys
from pathlib import Path

import pexpect

from powerx.testing import wait_until
from tests.conftest import HELLO_PYTHON, Workspace
from tests.integration.test_hot_reload import copy_example

PY_ID = "com.example.hello-python"


def test_each_hotkey_does_what_the_line_says(workspace: Workspace, tmp_path: Path) -> None:
    workspace.login()
    plugin = copy_example(HELLO_PYTHON, tmp_path / "hello")
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"  # webbrowser runs $BROWSER with the URL
    browser.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    browser.chmod(0o755)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "powerx.cli.main", "host", "start", "--mock", "--port", "0", str(plugin)],
        cwd=str(workspace.root),
        env={**workspace.env, "TERM": "dumb", "BROWSER": str(browser)},
        encoding="utf-8",
        timeout=60,
        dimensions=(50, 200),
    )
    try:
        child.expect(r"\[b\] open plugin  \[d\] dashboard  \[x\] debug  \[r\] restart plugins")
        child.send("b")
        child.expect(f"opening (http://127.0.0.1:\\d+)/plugins/{PY_ID}/")
        base = child.match.group(1)
        assert wait_until(lambda: opened.is_file() and PY_ID in opened.read_text(), 20)
        child.send("d")
        child.expect(r"opening http://127\.0\.0\.1:\d+/dashboard\?key=")
        assert wait_until(lambda: "/dashboard?key=" in opened.read_text(), 20)
        child.send("x")
        child.expect(f"powerx debug attach {PY_ID}")
        child.send("r")
        child.expect(f"restarted {PY_ID}: generation 2")
        child.send("c")
        child.expect("\x1b\\[2J")
        child.send("q")
        child.expect("quitting")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before
    assert base.startswith("http://127.0.0.1:")


def test_no_hotkeys_when_output_is_piped(workspace: Workspace, tmp_path: Path) -> None:
    workspace.login()
    plugin = copy_example(HELLO_PYTHON, tmp_path / "hello")
    command = f'exec "{sys.executable}" -m powerx.cli.main host start --mock --port 0 "{plugin}"'
    child = pexpect.spawn(  # a terminal on stdin, a pipe on stdout
        "/bin/sh",
        ["-c", f"{command} | cat"],
        cwd=str(workspace.root),
        env={**workspace.env, "TERM": "dumb"},
        encoding="utf-8",
        timeout=60,
    )
    try:
        child.expect("stop with Ctrl-C")
        child.send("q")  # not read: a key does nothing
        stopped = workspace.powerx("host", "stop")
        assert stopped.returncode == 0, stopped.stderr
        child.expect(pexpect.EOF)
        output = child.before
    finally:
        child.close(force=True)
    assert "[b] open plugin" not in output and "quitting" not in output
