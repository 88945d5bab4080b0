"""Run a real simulator from a test or a script, isolated from your own login and state.

    from powerx.testing import LocalSimulator

    with LocalSimulator(["./my-plugin"], watch=True) as sim:  # returns once it watches
        assert sim.get("/plugins/com.example.my-plugin/").status_code == 200
        edit_and_save()
        sim.wait_generation("com.example.my-plugin", 2)

The simulator is the real ``powerx host start --mock`` process on a free loopback port,
with a throwaway mock credential and state folder (unless you pass your own). Nothing here
sleeps for a guessed time: each ``wait_*`` polls a state the simulator reports (a watcher
armed, a reload pending, a generation serving, a request held).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout_s: float = 10.0, interval_s: float = 0.02) -> T:
    """Call ``check`` until it returns something true, and return that; after
    ``timeout_s``, return its last (false) answer. Made for ``assert wait_until(...)``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval_s)


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


class SimulatorProcess:
    """A ``powerx host start --mock`` process over some plugin folders, its output kept in
    files (readable while it runs), an HTTP client for it, and waits on what it reports.

    ``env`` must name the credential and state folders (``POWERX_CONFIG_HOME``,
    ``POWERX_STATE_DIR``); someone must have logged in there (``powerx login --mock``)."""

    def __init__(
        self,
        plugins: Sequence[str | Path],
        *,
        env: dict[str, str],
        cwd: Path,
        log_dir: Path,
        watch: bool = False,
        extra_args: Sequence[str] = (),
        start_timeout_s: float = 60.0,
    ) -> None:
        self.plugins = [Path(p).resolve() for p in plugins]
        self.env = env
        self.cwd = cwd
        self.log_dir = log_dir
        self.watch = watch or "--watch" in extra_args
        self.extra_args = list(extra_args)
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self.client = httpx.Client(timeout=30, trust_env=False)

    def start(self) -> None:
        """Start the process and return once it serves the plugins (and, when it watches
        them, once every watcher is armed: a save from then on reloads)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "powerx.cli.main",
            "host",
            "start",
            "--mock",
            "--port",
            "0",
            *(["--watch"] if self.watch and "--watch" not in self.extra_args else []),
            *self.extra_args,
            *map(str, self.plugins),
        ]
        with self._out_path.open("w") as out, self._err_path.open("w") as err:
            self.process = subprocess.Popen(
                command, env=self.env, cwd=self.cwd, stdout=out, stderr=err, text=True
            )
        state_dir = Path(self.env["POWERX_STATE_DIR"])
        self.url = wait_until_up(self.process, state_dir, self.start_timeout_s, self.output)
        if self.watch:
            self.wait_armed(timeout_s=self.start_timeout_s)

    @property
    def _out_path(self) -> Path:
        return self.log_dir / "simulator.out"

    @property
    def _err_path(self) -> Path:
        return self.log_dir / "simulator.err"

    def stdout(self) -> str:
        return self._out_path.read_text() if self._out_path.exists() else ""

    def stderr(self) -> str:
        return self._err_path.read_text() if self._err_path.exists() else ""

    def output(self) -> str:
        """What the simulator printed so far: its stdout (reload lines), then stderr."""
        return self.stdout() + self.stderr()

    def stop(self) -> tuple[str, str]:
        """Stop the process (SIGTERM, then SIGKILL after 20 s); its stdout and stderr."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.client.close()
        return self.stdout(), self.stderr()

    # HTTP

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, self.url + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def token(self) -> str:
        """The mock credential's bearer token (``powerx login --mock`` wrote it)."""
        credentials = Path(self.env["POWERX_CONFIG_HOME"]) / "credentials.json"
        return str(json.loads(credentials.read_text())["token"])

    def debug_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token()}"}

    def status(self) -> dict[str, Any]:
        response = self.get("/internal/debug/status", headers=self.debug_headers())
        assert response.status_code == 200, response.text
        status: dict[str, Any] = response.json()
        return status

    def plugin_status(self, plugin: str) -> dict[str, Any]:
        """``plugin``'s entry in the status (empty if it is not mounted)."""
        found: dict[str, Any] = next((p for p in self.status()["plugins"] if p["id"] == plugin), {})
        return found

    # Waits on what the simulator reports

    def wait_for(
        self, path: str, accept: Callable[[httpx.Response], bool], timeout_s: float = 10.0
    ) -> httpx.Response | None:
        """Poll ``path`` until ``accept(response)``; None on timeout."""

        def accepted() -> httpx.Response | None:
            try:
                response = self.get(path)
            except httpx.HTTPError:
                return None
            return response if accept(response) else None

        return wait_until(accepted, timeout_s, interval_s=0.002)

    def wait_plugin(
        self, plugin: str, accept: Callable[[dict[str, Any]], object], what: str, timeout_s: float
    ) -> dict[str, Any]:
        """Poll ``plugin``'s status until ``accept(status)``; return it (fail on timeout)."""
        last: dict[str, Any] = {}

        def accepted() -> bool:
            nonlocal last
            last = self.plugin_status(plugin)
            return bool(last) and bool(accept(last))

        if not wait_until(accepted, timeout_s):
            raise AssertionError(f"{plugin}: timed out after {timeout_s:g} s waiting for {what}")
        return last

    def wait_armed(
        self, plugin: str | None = None, folder: str | None = None, timeout_s: float = 30.0
    ) -> None:
        """Until the dev loop's watcher of ``plugin`` (None: of every plugin) is armed,
        and, with ``folder``, watches that folder of the plugin's root too."""

        def armed(status: dict[str, Any]) -> bool:
            watch = status["watch"]
            return bool(watch["armed"]) and (folder is None or folder in watch["folders"])

        plugins = [plugin] if plugin else [p["id"] for p in self.status()["plugins"]]
        for each in plugins:
            self.wait_plugin(each, armed, f"an armed watcher ({folder=})", timeout_s)

    def wait_pending(
        self, plugin: str, changed: Iterable[str] = (), timeout_s: float = 30.0
    ) -> dict[str, Any]:
        """Until a reload of ``plugin`` is pending (its save seen, being built or
        uploaded), covering at least the files ``changed`` (relative to its root)."""
        wanted = set(changed)
        return self.wait_plugin(
            plugin,
            lambda s: s["watch"]["reload_pending"] and wanted <= set(s["watch"]["changed"]),
            f"a pending reload covering {sorted(wanted)}",
            timeout_s,
        )

    def wait_held(self, plugin: str, count: int = 1, timeout_s: float = 30.0) -> dict[str, Any]:
        """Until ``count`` requests to ``plugin`` wait for its pending reload."""
        return self.wait_plugin(
            plugin,
            lambda s: s["watch"]["held_requests"] >= count,
            f"{count} held request(s)",
            timeout_s,
        )

    def wait_generation(
        self, plugin: str, generation: int, timeout_s: float = 30.0
    ) -> dict[str, Any]:
        """Until generation ``generation`` (or a later one) of ``plugin`` serves and no
        reload of it is pending."""
        return self.wait_plugin(
            plugin,
            lambda s: (s["generation"] or 0) >= generation and not s["watch"]["reload_pending"],
            f"generation {generation}",
            timeout_s,
        )


class LocalSimulator(SimulatorProcess):
    """A simulator with its own throwaway credential and state (a temporary folder unless
    ``workdir`` is given); a context manager that starts and stops it."""

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
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="powerx-sim-")
            workdir = Path(self._tmp.name)
        self.workdir = workdir
        own_env = {
            k: v for k, v in (env or os.environ).items() if not k.startswith(("POWERX_", "PX_"))
        }
        own_env.update(
            {
                "POWERX_CONFIG_HOME": str(workdir / "config-home"),
                "POWERX_STATE_DIR": str(workdir / "state"),
                "NO_COLOR": "1",
                "COLUMNS": "200",
            }
        )
        super().__init__(
            plugins,
            env=own_env,
            cwd=workdir,
            log_dir=workdir,
            watch=watch,
            extra_args=extra_args,
            start_timeout_s=start_timeout_s,
        )

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
        self.workdir.mkdir(parents=True, exist_ok=True)
        login = self.powerx("login", "--mock")
        if login.returncode != 0:
            raise RuntimeError(f"powerx login failed: {login.stderr}")
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
