"""Hotkeys while `powerx host start` runs in a terminal (a real pty): listed on one line,
each key does what it says; with output piped there is no hotkey line and stdin is not
read."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NamedTuple

import pexpect
import pytest

from powerx.testing import wait_until
from tests.conftest import EXAMPLES, HELLO_PYTHON, Workspace
from tests.integration.test_hot_reload import copy_example

PY_ID = "com.example.hello-python"
BACKEND_ID = "com.example.hello-backend-python"


class Browser(NamedTuple):
    """A stand-in browser: ``command`` (for $BROWSER) writes each URL it opens to ``opened``."""

    command: Path
    opened: Path

    def urls(self) -> list[str]:
        return self.opened.read_text().split() if self.opened.is_file() else []


@pytest.fixture
def browser(tmp_path: Path) -> Browser:
    opened = tmp_path / "opened.txt"
    command = tmp_path / "browser.sh"  # webbrowser runs $BROWSER with the URL
    command.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    command.chmod(0o755)
    return Browser(command, opened)


def in_a_terminal(workspace: Workspace, browser: Browser, *args: str) -> pexpect.spawn:
    """`powerx *args` on a real pty (hotkeys are on), opening URLs in ``browser``."""
    return pexpect.spawn(
        sys.executable,
        ["-m", "powerx.cli.main", *args],
        cwd=str(workspace.root),
        env={**workspace.env, "TERM": "dumb", "BROWSER": str(browser.command)},
        encoding="utf-8",
        timeout=60,
        dimensions=(50, 250),
    )


def test_each_hotkey_does_what_the_line_says(
    workspace: Workspace, tmp_path: Path, browser: Browser
) -> None:
    workspace.login()
    plugin = copy_example(HELLO_PYTHON, tmp_path / "hello")
    child = in_a_terminal(workspace, browser, "host", "start", "--mock", "--port", "0", str(plugin))
    try:
        child.expect(r"\[b\] open plugin  \[d\] dashboard  \[x\] debug  \[r\] restart plugins")
        child.send("b")
        child.expect(f"opening (http://127.0.0.1:\\d+)/plugins/{PY_ID}/")
        base = child.match.group(1)
        assert wait_until(lambda: any(PY_ID in url for url in browser.urls()), 20)
        child.send("d")
        child.expect(r"opening http://127\.0\.0\.1:\d+/dashboard\?key=")
        assert wait_until(lambda: any("/dashboard?key=" in url for url in browser.urls()), 20)
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


def test_powerx_dev_has_the_same_hotkeys_over_http(
    workspace: Workspace, tmp_path: Path, start_simulator: Any, browser: Browser
) -> None:
    """`powerx dev` in its own terminal acts on the running simulator: b opens the plugin
    where it is served (a backend's /_p/<id>/api/v1/), r restarts it there, q stops
    watching (and only that: the simulator keeps serving)."""
    workspace.login()
    python = copy_example(HELLO_PYTHON, tmp_path / "hello")
    backend = copy_example(EXAMPLES / "hello-backend-python", tmp_path / "backend")
    simulator = start_simulator([python, backend], "--mock")
    child = in_a_terminal(workspace, browser, "dev", str(python), str(backend))
    try:
        child.expect(r"\[b\] open plugin  \[d\] dashboard  \[x\] debug  \[r\] restart plugins")
        child.expect("watching")  # armed: the initial push is done
        child.send("b")
        child.expect(r"opening (http://\S+)")
        assert wait_until(lambda: len(browser.urls()) == 2, 20)
        assert sorted(browser.urls()) == sorted(
            [
                f"{simulator.url}/_p/{BACKEND_ID}/api/v1/",
                f"{simulator.url}/plugins/{PY_ID}/",
            ]
        )
        child.send("d")
        child.expect(r"opening http://127\.0\.0\.1:\d+/dashboard\?key=")
        child.send("x")
        child.expect(f"powerx debug attach {BACKEND_ID}")
        before = simulator.get("/internal/debug/status", headers=simulator.debug_headers()).json()
        generation = {p["id"]: p["generation"] for p in before["plugins"]}
        child.send("r")
        child.expect(f"restarted {PY_ID}: generation {generation[PY_ID] + 1}")
        child.expect(f"restarted {BACKEND_ID}: generation {generation[BACKEND_ID] + 1}")
        child.send("q")
        child.expect("quitting")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before
    served = simulator.get(f"/plugins/{PY_ID}/")
    assert served.status_code == 200, served.text


def test_restarting_a_plugin_that_is_not_serving_says_so(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    workspace.login()
    simulator = start_simulator([copy_example(HELLO_PYTHON, tmp_path / "hello")], "--mock")
    url = "/internal/debug/plugins/com.example.nothing/restart"
    refused = simulator.post(url, headers=simulator.debug_headers())
    assert refused.status_code == 404
    assert refused.json()["error"] == "plugin_not_found"
    assert simulator.post(url).status_code == 401  # no credential, no restart
