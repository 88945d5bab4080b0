"""Load while reloading: N plugins (Python and Node, alternating) hot-reload concurrently
while a load generator keeps requesting each of them. Prints failed requests (the target
is 0) and the peak RSS of the simulator and of each plugin's generations.

Usage: python benchmarks/load_reload.py [--plugins 8] [--reloads 20]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from powerx.testing import LocalSimulator

REPO = Path(__file__).resolve().parent.parent


@dataclass
class PluginLoad:
    plugin_id: str
    runtime: str
    folder: Path
    requests: int = 0
    failed: int = 0
    served_edits: int = 0
    peak_rss_kb: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class LoadResult:
    plugins: list[PluginLoad]
    reloads_per_plugin: int
    seconds: float
    simulator_peak_rss_kb: int = 0

    @property
    def failed(self) -> int:
        return sum(p.failed for p in self.plugins)

    @property
    def requests(self) -> int:
        return sum(p.requests for p in self.plugins)


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _prepare(count: int, work: Path) -> list[PluginLoad]:
    plugins = []
    for index in range(count):
        runtime = "python" if index % 2 == 0 else "node"
        source = REPO / "examples" / f"hello-{runtime}"
        folder = work / f"plugin-{index}"
        shutil.copytree(source, folder, symlinks=True)
        plugin_id = f"com.load.plugin{index}"
        manifest = folder / "plugin.yaml"
        manifest.write_text(manifest.read_text().replace(f"com.example.hello-{runtime}", plugin_id))
        plugins.append(PluginLoad(plugin_id, runtime, folder))
    return plugins


def _edit(plugin: PluginLoad, marker: str) -> None:
    if plugin.runtime == "python":
        path, prefix, line = plugin.folder / "app.py", "GREETING =", f'GREETING = "{marker}"'
    else:
        path = plugin.folder / "src/index.ts"
        prefix, line = "const GREETING", f'const GREETING = "{marker}";'
    lines = path.read_text().splitlines()
    path.write_text("\n".join(line if x.startswith(prefix) else x for x in lines) + "\n")


def run(plugin_count: int, reloads: int, work: Path, gap_s: float = 0.05) -> LoadResult:
    plugins = _prepare(plugin_count, work)
    stop = threading.Event()
    with LocalSimulator([p.folder for p in plugins], watch=True, workdir=work / "sim") as sim:
        assert sim.process is not None
        simulator_pid = sim.process.pid  # watchers armed (after the build caches warmed)
        latest: dict[str, str] = {}

        def load(plugin: PluginLoad) -> None:
            with httpx.Client(trust_env=False, timeout=30) as client:
                while not stop.is_set():
                    plugin.requests += 1
                    try:
                        response = client.get(f"{sim.url}/plugins/{plugin.plugin_id}/")
                    except httpx.HTTPError as error:
                        plugin.failed += 1
                        plugin.errors.append(repr(error))
                        continue
                    if response.status_code != 200:
                        plugin.failed += 1
                        plugin.errors.append(f"{response.status_code} {response.text[:200]}")
                    else:
                        latest[plugin.plugin_id] = response.json().get("greeting", "")

        def edit(plugin: PluginLoad) -> None:
            for number in range(reloads):
                marker = f"load-{number}-{time.monotonic_ns()}"
                _edit(plugin, marker)
                deadline = time.monotonic() + 30
                while latest.get(plugin.plugin_id) != marker and time.monotonic() < deadline:
                    time.sleep(0.005)
                if latest.get(plugin.plugin_id) == marker:
                    plugin.served_edits += 1
                time.sleep(gap_s)

        def sample(result: LoadResult) -> None:
            with httpx.Client(trust_env=False, timeout=10) as client:
                headers = {"authorization": f"Bearer {_token(sim)}"}
                while not stop.is_set():
                    result.simulator_peak_rss_kb = max(
                        result.simulator_peak_rss_kb, _rss_kb(simulator_pid)
                    )
                    try:
                        status = client.get(f"{sim.url}/internal/debug/status", headers=headers)
                        pids = {p["id"]: p["pid"] for p in status.json()["plugins"]}
                    except (httpx.HTTPError, ValueError, KeyError):
                        pids = {}
                    for plugin in plugins:
                        if pids.get(plugin.plugin_id):
                            plugin.peak_rss_kb = max(
                                plugin.peak_rss_kb, _rss_kb(pids[plugin.plugin_id])
                            )
                    time.sleep(0.25)

        result = LoadResult(plugins, reloads, 0.0)
        started = time.monotonic()
        workers = [threading.Thread(target=load, args=(p,), daemon=True) for p in plugins]
        workers.append(threading.Thread(target=sample, args=(result,), daemon=True))
        for worker in workers:
            worker.start()
        editors = [threading.Thread(target=edit, args=(p,)) for p in plugins]
        for editor in editors:
            editor.start()
        for editor in editors:
            editor.join()
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
        result.seconds = time.monotonic() - started
    return result


def _token(sim: LocalSimulator) -> str:
    import json

    assert sim.workdir is not None
    credentials = sim.workdir / "config-home" / "credentials.json"
    return str(json.loads(credentials.read_text())["token"])


def table(result: LoadResult) -> str:
    lines = [
        "| plugin | runtime | reloads served | requests | failed | peak RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for p in result.plugins:
        lines.append(
            f"| {p.plugin_id} | {p.runtime} | {p.served_edits}/{result.reloads_per_plugin} | "
            f"{p.requests} | {p.failed} | {p.peak_rss_kb / 1024:.1f} |"
        )
    lines.append(
        f"| **simulator** | | {sum(p.served_edits for p in result.plugins)} | {result.requests} "
        f"| {result.failed} | {result.simulator_peak_rss_kb / 1024:.1f} |"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", type=int, default=8, help="plugins reloading at once")
    parser.add_argument("--reloads", type=int, default=20, help="reloads per plugin")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="powerx-load-") as work:
        result = run(args.plugins, args.reloads, Path(work))
    print(table(result))
    print(
        f"\n{len(result.plugins)} plugins x {result.reloads_per_plugin} reloads in "
        f"{result.seconds:.1f} s: {result.requests} requests, {result.failed} failed"
    )
    for p in result.plugins:
        for error in p.errors[:3]:
            print(f"  {p.plugin_id}: {error}", file=sys.stderr)
    return 0 if result.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
