"""The simulator as a process: ``powerx host start --mock`` started over some plugin
folders, awaited until it serves, its output kept, its state read over HTTP, stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from powerx.testing.waits import WaitTimeout, wait_until


def wait_until_up(
    process: subprocess.Popen[str], state_dir: Path, timeout_s: float, output: Callable[[], str]
) -> str:
    """Wait for a starting simulator to write its host file; return its URL. A simulator
    that exits or does not come up in ``timeout_s`` raises RuntimeError with its output."""
    info = state_dir / "host.json"

    def url() -> str:
        if process.poll() is not None:
            raise RuntimeError(f"the simulator exited with {process.returncode}:\n{output()}")
        try:
            return str(json.loads(info.read_text())["url"])
        except (OSError, ValueError):
            return ""  # not written yet, or being written

    try:
        return wait_until(url, timeout_s, what=f"{info} to name the simulator's URL")
    except WaitTimeout:
        process.kill()
        raise RuntimeError(
            f"the simulator did not come up within {timeout_s:g} s:\n{output()}"
        ) from None


def isolated_env(workdir: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) without its ``POWERX_*`` and
    ``PX_*`` settings (your login, your state), with a credential folder
    (``workdir/config-home``) and a state folder (``workdir/state``) of its own, and
    plain, wide output."""
    env = {k: v for k, v in (base or os.environ).items() if not k.startswith(("POWERX_", "PX_"))}
    env.update(
        {
            "POWERX_CONFIG_HOME": str(workdir / "config-home"),
            "POWERX_STATE_DIR": str(workdir / "state"),
            "NO_COLOR": "1",
            "COLUMNS": "200",
        }
    )
    return env


def run_powerx(
    *args: str, env: Mapping[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``powerx ARGS`` (this interpreter's) to its end; its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "powerx.cli.main", *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class SimulatorProcess:
    """A ``powerx host start --mock`` process over some plugin folders, its output kept in
    files (readable while it runs), an HTTP client for it, and waits on what it reports.

    ``env`` names the credential folder (``POWERX_CONFIG_HOME``), where someone has logged
    in (``powerx login --mock``), and the state folder (``POWERX_STATE_DIR``; without it,
    ``.powerx`` in ``cwd``, as a developer's own run keeps it). :func:`isolated_env` makes
    such an environment."""

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
        self.url = wait_until_up(self.process, self.state_dir, self.start_timeout_s, self.output)
        if self.watch:
            self.wait_armed(timeout_s=self.start_timeout_s)

    @property
    def state_dir(self) -> Path:
        """Where it keeps its state and writes ``host.json`` once it serves."""
        return Path(self.env.get("POWERX_STATE_DIR") or self.cwd / ".powerx")

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

    def powerx(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a ``powerx`` command against this simulator's credential and state."""
        return run_powerx(*args, env=self.env, cwd=self.cwd, timeout=timeout)

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

        def answer() -> httpx.Response | None:
            try:
                return self.get(path)
            except httpx.HTTPError:
                return None

        try:
            return wait_until(
                answer,
                timeout_s,
                interval_s=0.002,
                accept=lambda response: response is not None and accept(response),
            )
        except WaitTimeout:
            return None

    def wait_plugin(
        self, plugin: str, accept: Callable[[dict[str, Any]], object], what: str, timeout_s: float
    ) -> dict[str, Any]:
        """Poll ``plugin``'s status until ``accept(status)``; return it. On timeout, a
        :class:`WaitTimeout` shows the last status seen."""
        return wait_until(
            lambda: self.plugin_status(plugin),
            timeout_s,
            accept=lambda status: bool(status) and accept(status),
            what=f"{plugin}: {what}",
        )

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
        own_env = isolated_env(workdir, env)
        super().__init__(
            plugins,
            env=own_env,
            cwd=workdir,
            log_dir=workdir,
            watch=watch,
            extra_args=extra_args,
            start_timeout_s=start_timeout_s,
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
