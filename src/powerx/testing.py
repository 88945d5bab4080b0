"""Run a real simulator from a test or a script, isolated from your own login and state.

    from powerx.testing import LocalSimulator

    with LocalSimulator(["./my-plugin"]) as sim:
        assert sim.get("/plugins/com.example.my-plugin/").status_code == 200

The simulator is the real ``powerx host start --mock`` process on a free loopback port,
with a throwaway mock credential and state folder (unless you pass your own).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx


def wait_until_up(
    process: subprocess.Popen[str], state_dir: Path, timeout_s: float, output: Callable[[], str]
) -> str:
    """Wait for a starting simulator to write its host file; return its URL."""
    info = state_dir / "host.json"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the simulator exited with {process.returncode}:\n{output()}")
        if info.is_file():
            try:
                return str(json.loads(info.read_text())["url"])
            except ValueError:
                pass  # being written
        time.sleep(0.02)
    process.kill()
    raise RuntimeError(f"the simulator did not come up within {timeout_s:g} s:\n{output()}")


class LocalSimulator:
    def __init__(
        self,
        plugins: Sequence[str | Path],
        *,
        watch: bool = False,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        workdir: Path | None = None,
        start_timeout_s: float = 60.0,
    ) -> None:
        self.plugins = [Path(p).resolve() for p in plugins]
        self.watch = watch
        self.extra_args = list(extra_args)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.workdir = workdir
        self.start_timeout_s = start_timeout_s
        self.env = {
            k: v for k, v in (env or os.environ).items() if not k.startswith(("POWERX_", "PX_"))
        }
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self.log_path: Path | None = None
        self.client = httpx.Client(timeout=30, trust_env=False)

    def powerx(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a ``powerx`` command against this simulator's credential and state."""
        return subprocess.run(
            [sys.executable, "-m", "powerx.cli.main", *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def __enter__(self) -> LocalSimulator:
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="powerx-sim-")
            self.workdir = Path(self._tmp.name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.env.update(
            {
                "POWERX_CONFIG_HOME": str(self.workdir / "config-home"),
                "POWERX_STATE_DIR": str(self.workdir / "state"),
                "NO_COLOR": "1",
                "COLUMNS": "200",
            }
        )
        login = self.powerx("login", "--mock")
        if login.returncode != 0:
            raise RuntimeError(f"powerx login failed: {login.stderr}")
        self.log_path = self.workdir / "simulator.log"
        command = [
            sys.executable,
            "-m",
            "powerx.cli.main",
            "host",
            "start",
            "--mock",
            "--port",
            "0",
            *(["--watch"] if self.watch else []),
            *self.extra_args,
            *map(str, self.plugins),
        ]
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            command, env=self.env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        self.url = self._wait_until_up()
        return self

    def _wait_until_up(self) -> str:
        assert self.process is not None and self.workdir is not None
        return wait_until_up(
            self.process, self.workdir / "state", self.start_timeout_s, self.output
        )

    def output(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(self.url + path, **kwargs)

    def wait_for(
        self, path: str, accept: Callable[[httpx.Response], bool], timeout_s: float = 10.0
    ) -> httpx.Response | None:
        """Poll ``path`` until ``accept(response)``; None on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                response = self.get(path)
            except httpx.HTTPError:
                time.sleep(0.01)
                continue
            if accept(response):
                return response
            time.sleep(0.002)
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.client.close()
        if self._tmp is not None:
            self._tmp.cleanup()
