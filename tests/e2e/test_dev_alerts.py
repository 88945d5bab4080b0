"""Alerts in the `powerx dev` terminal: once, at a failed reload of a watched plugin, and
when it clears; not the one the fixing save raises, not old ones, not other plugins'."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from powerx.testing import wait_until
from tests.conftest import HELLO_PYTHON, RunningSimulator, Workspace

PY_ID = "com.example.hello-python"


class DevOutput:
    """A `powerx dev` process whose output is read while it runs."""

    def __init__(self, workspace: Workspace, plugin: Path, folder: Path) -> None:
        self.out_path = folder / "dev.out"
        self.err_path = folder / "dev.err"
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "powerx.cli.main", "dev", str(plugin)],
                cwd=workspace.root,
                env=workspace.env,
                stdout=out,
                stderr=err,
                text=True,
            )

    def lines(self) -> list[str]:
        return self.out_path.read_text().splitlines()

    def text(self) -> str:
        return self.out_path.read_text() + self.err_path.read_text()

    def wait_for(self, prefix: str, count: int, timeout_s: float = 30) -> None:
        """Until ``count`` lines of the output start with ``prefix``."""
        wait_until(
            self.out_path.read_text,
            timeout_s,
            accept=lambda out: sum(line.startswith(prefix) for line in out.splitlines()) >= count,
            what=f"{count} line(s) starting with {prefix!r}",
        )


@contextlib.contextmanager
def powerx_dev(
    workspace: Workspace, simulator: RunningSimulator, plugin: Path, folder: Path
) -> Iterator[DevOutput]:
    dev = DevOutput(workspace, plugin, folder)
    try:
        # The initial push serves what the simulator already serves: "= ... unchanged".
        dev.wait_for("= ", 1)
        simulator.wait_armed(PY_ID)  # the dev loop tells the simulator
        yield dev
    finally:
        dev.process.terminate()
        dev.process.wait(timeout=20)


def save(source: Path, greeting_line: str) -> None:
    """One save, one watch event: staged outside the plugin and renamed over the source
    (a plain write, truncate then write, can reach the watcher as two reloads)."""
    lines = source.read_text().splitlines()
    staged = source.parent.parent / f".{source.name}.staged"
    staged.write_text(
        "\n".join(greeting_line if x.startswith("GREETING =") else x for x in lines) + "\n"
    )
    os.replace(staged, source)


def active_alerts(simulator: Any) -> list[dict[str, Any]]:
    response = simulator.get("/internal/debug/alerts", headers=simulator.debug_headers())
    assert response.status_code == 200, response.text
    return response.json()["alerts"]  # type: ignore[no-any-return]


def report_failure(simulator: Any, plugin: str) -> None:
    """A failed build as a dev loop reports it (the simulator counts it for the alerts)."""
    response = simulator.request(
        "POST",
        "/internal/debug/telemetry",
        json=[{"kind": "failure", "plugin": plugin, "reason": "build_failed", "message": "broken"}],
        headers=simulator.debug_headers(),
    )
    assert response.status_code == 202, response.text


def copy_example(tmp_path: Path) -> Path:
    plugin = tmp_path / "folder-name"  # not the plugin's id
    shutil.copytree(HELLO_PYTHON, plugin, ignore=shutil.ignore_patterns("__pycache__"))
    return plugin


def test_the_alert_shows_at_a_failed_reload_not_at_the_fix_and_says_when_it_clears(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    config = tmp_path / "sim.yaml"
    config.write_text(
        "observability:\n  alerts:\n    failure_rate: 0.05\n    failure_window_s: 8\n"
        "    failure_min_reloads: 2\n    mismatch_count: 100\n"
    )
    workspace.login()
    plugin = copy_example(tmp_path)
    source = plugin / "app.py"
    simulator = start_simulator([plugin], "--config", str(config))
    with powerx_dev(workspace, simulator, plugin, tmp_path) as dev:
        save(source, "GREETING = (")
        dev.wait_for("✗", 1)
        assert active_alerts(simulator) == []  # one reload counted: below the minimum
        save(source, 'GREETING = "fixed"')
        dev.wait_for("✓", 1)
        # The fix made it 1 failed of 2: the simulator raises its alert now...
        assert [a["plugin"] for a in active_alerts(simulator)] == [PY_ID]
        save(source, "GREETING = ((")
        dev.wait_for("✗", 2)
        # ...the terminal shows it at the next failed reload, once.
        dev.wait_for("⚠ alert", 1)
        # The window moves past the failures: the simulator clears it, the terminal says so.
        dev.wait_for("✓ alert cleared", 1)
        assert active_alerts(simulator) == []
    lines = dev.lines()
    fix = next(i for i, line in enumerate(lines) if line.startswith("✓"))
    second_failure = [i for i, line in enumerate(lines) if line.startswith("✗")][1]
    alert_lines = [i for i, line in enumerate(lines) if line.startswith("⚠ alert")]
    assert len(alert_lines) == 1, lines
    assert fix < second_failure < alert_lines[0], lines
    assert "1 of the last 2 reloads failed" in lines[alert_lines[0]]
    failures = [line for line in lines if line.startswith("✗")]
    assert all(line.startswith(f"✗ {PY_ID}  build_failed") for line in failures), failures


def test_old_alerts_and_other_plugins_alerts_are_not_shown(
    workspace: Workspace, tmp_path: Path, start_simulator: Any
) -> None:
    config = tmp_path / "sim.yaml"
    config.write_text(
        "observability:\n  alerts:\n    failure_min_reloads: 1\n    mismatch_count: 1\n"
    )
    workspace.login()
    plugin = copy_example(tmp_path)
    simulator = start_simulator([plugin], "--config", str(config))
    report_failure(simulator, PY_ID)
    report_failure(simulator, "com.example.other")
    assert {a["plugin"] for a in active_alerts(simulator)} == {PY_ID, "com.example.other"}
    with powerx_dev(workspace, simulator, plugin, tmp_path) as dev:
        report_failure(simulator, "com.example.third")  # raised while this loop runs
        # A failed reload (the image is outside the range): the plugin's old failure-rate
        # alert is still on and not shown; the mismatch alert it raises is new: shown.
        manifest = plugin / "plugin.yaml"
        manifest.write_text(manifest.read_text().replace('">=2.3 <3"', '">=3.0"'))
        dev.wait_for("✗", 1)
        dev.wait_for("⚠ alert", 1)
    text = dev.out_path.read_text()
    alert_lines = [line for line in dev.lines() if line.startswith("⚠ alert")]
    assert len(alert_lines) == 1 and "version mismatch" in alert_lines[0], text
    assert "com.example.other" not in text and "com.example.third" not in text
