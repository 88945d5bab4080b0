"""Breakpoints across reloads: does a breakpoint set once hit after every reload, and what
does replaying it cost?

Runs an example plugin in a real simulator. First N reloads with no debugger (the
baseline start phase), then N reloads with a client attached and one pause breakpoint:
after each reload a request must stop at the breakpoint, in the new generation, at the
right line; the benchmark then continues it. Prints a table:

Three examples: Python (debugpy), Node (the inspector, TypeScript lines via the source
map) and Go (Delve; once attached, builds use -gcflags=all=-N -l as the dev loop's do: the
first of them recompiles the standard library, ~25 s, outside the timed phases).

- hits: reloads after which the breakpoint stopped the request (target: 100 %);
- replay: the simulator's DAP handshake + breakpoint replay into the generation (p50/p95);
- start: the reload's start phase without and with the debugger, and the difference.

    python benchmarks/breakpoint_replay.py              # 50 reloads each
    python benchmarks/breakpoint_replay.py --reloads 200 --json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from powerx.build import BuildSession
from powerx.testing import LocalSimulator

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Case:
    runtime: str
    plugin: str
    example: str
    source: str  # the file edited and broken in, relative to the plugin
    greeting: str  # the line holding the greeting, as a format with {text}
    # A one-line statement: a multi-line call is reached twice per run in Python 3.11
    # (its first line again when the call happens), so a breakpoint there stops twice.
    break_at: str
    path: str = "/plugins/{plugin}/"  # the request that reaches the breakpoint


CASES = {
    "python": Case(
        "python",
        "com.example.hello-python",
        "hello-python",
        "app.py",
        'GREETING = "{text}"',
        "    host = host_for(request)",
    ),
    "node": Case(
        "node",
        "com.example.hello-node",
        "hello-node",
        "src/index.ts",
        'const GREETING = "{text}";',
        "    const url = new URL(request.url);",
    ),
    "go": Case(
        "go",
        "com.example.hello-go",
        "hello-go",
        "backend/cmd/plugin/main.go",
        'const greeting = "{text}"',
        "\ttenant, _ := auth.FromRequest(r)",
        "/_p/{plugin}/api/v1/hello",
    ),
}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Bench:
    def __init__(self, simulator: LocalSimulator, plugin_dir: Path, case: Case) -> None:
        self.case = case
        self.simulator = simulator
        self.plugin_dir = plugin_dir
        token = json.loads(
            (Path(simulator.env["POWERX_CONFIG_HOME"]) / "credentials.json").read_text()
        )["token"]
        self.headers = {"authorization": f"Bearer {token}", "x-powerx-client": "benchmark"}
        self.http = httpx.Client(base_url=simulator.url, timeout=60, trust_env=False)
        self.build = BuildSession(plugin_dir, plugin_dir.parent / "build-cache")
        self.version = 0

    def reload(self) -> dict[str, Any]:
        """Edit the greeting, push the artefact; the simulator's answer (with timings)."""
        self.version += 1
        source = self.plugin_dir / self.case.source
        prefix = self.case.greeting.split("{")[0]
        lines = [
            self.case.greeting.format(text=f"v{self.version}") if line.startswith(prefix) else line
            for line in source.read_text().splitlines()
        ]
        source.write_text("\n".join(lines) + "\n")
        artefact = self.build.build()
        response = self.http.post(
            "/internal/debug/hot-reload",
            content=artefact.data,
            headers={**self.headers, "x-powerx-digest": artefact.digest},
        )
        response.raise_for_status()
        return dict(response.json())

    def session(self) -> dict[str, Any]:
        return dict(
            self.http.get(
                f"/internal/debug/sessions/{self.case.plugin}", headers=self.headers
            ).json()
        )

    def wait_paused(self, timeout_s: float = 10.0) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            paused = self.session()["paused"]
            if paused:
                return dict(paused)
            time.sleep(0.005)
        return None


def _get(url: str, answer: dict[str, httpx.Response]) -> None:
    answer["r"] = httpx.get(url, timeout=60, trust_env=False)


def run(case: Case, reloads: int) -> dict[str, Any]:
    plugin = case.plugin
    with tempfile.TemporaryDirectory(prefix="powerx-bp-") as temp:
        plugin_dir = Path(temp) / case.example
        shutil.copytree(REPO / "examples" / case.example, plugin_dir, symlinks=True)
        line = 1 + next(
            i
            for i, text in enumerate((plugin_dir / case.source).read_text().splitlines())
            if text.startswith(case.break_at)
        )
        with LocalSimulator([plugin_dir], workdir=Path(temp) / "sim") as simulator:
            bench = Bench(simulator, plugin_dir, case)
            plain = [bench.reload()["timings"]["start_ms"] for _ in range(reloads)]

            bench.http.post(f"/internal/debug/sessions/{plugin}/attach", headers=bench.headers)
            put = bench.http.put(
                f"/internal/debug/breakpoints/{plugin}",
                json={"breakpoints": [{"file": case.source, "line": line}]},
                headers=bench.headers,
            )
            put.raise_for_status()
            bench.build.debug = True  # as the dev loop builds once a debugger is in (Go)
            debugged, replay, hits, misses = [], [], 0, []
            for _ in range(reloads):
                result = bench.reload()
                debugged.append(result["timings"]["start_ms"])
                replay_ms = bench.session()["last_replay_ms"]
                if replay_ms is not None:
                    replay.append(float(replay_ms))
                answer: dict[str, httpx.Response] = {}
                url = simulator.url + case.path.format(plugin=plugin)
                thread = threading.Thread(target=_get, args=(url, answer))
                thread.start()
                paused = bench.wait_paused()
                if (
                    paused is not None
                    and paused["line"] == line
                    and paused["generation"] == result["generation"]
                ):
                    hits += 1
                else:
                    misses.append(result["generation"])
                if paused is not None:
                    bench.http.post(
                        f"/internal/debug/sessions/{plugin}/command",
                        json={"command": "continue"},
                        headers=bench.headers,
                    )
                thread.join(60)
                served = answer.get("r")
                if served is None or served.json().get("greeting") != f"v{bench.version}":
                    misses.append(result["generation"])
            bench.build.close()
    return {
        "runtime": case.runtime,
        "reloads": reloads,
        "hits": hits,
        "hit_rate": hits / reloads,
        "missed_generations": misses,
        "replay_ms": {"p50": percentile(replay, 50), "p95": percentile(replay, 95)},
        "start_ms_without_debugger": {"p50": percentile(plain, 50), "p95": percentile(plain, 95)},
        "start_ms_with_debugger": {
            "p50": percentile(debugged, 50),
            "p95": percentile(debugged, 95),
        },
        "added_p50_ms": statistics.median(debugged) - statistics.median(plain),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reloads", type=int, default=50, help="reloads per phase (50)")
    parser.add_argument(
        "--only", choices=sorted(CASES), action="append", help="one runtime (repeatable)"
    )
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    args = parser.parse_args()
    results = [run(CASES[name], args.reloads) for name in args.only or ["python", "node"]]
    if args.json:
        print(json.dumps(results, indent=2))
    columns = ["runtime", "reloads", "breakpoint hit", "replay p50 / p95"]
    columns += ["start p50 without / with debugger", "added p50"]
    print("| " + " | ".join(columns) + " |")
    print("|---|---|---|---|---|---|")
    for figures in results:
        print(
            f"| {figures['runtime']} | {figures['reloads']} | "
            f"{figures['hits']}/{figures['reloads']} ({figures['hit_rate']:.0%}) | "
            f"{figures['replay_ms']['p50']:.1f} / {figures['replay_ms']['p95']:.1f} ms | "
            f"{figures['start_ms_without_debugger']['p50']:.1f} / "
            f"{figures['start_ms_with_debugger']['p50']:.1f} ms | "
            f"{figures['added_p50_ms']:.1f} ms |"
        )
    perfect = all(f["hits"] == f["reloads"] and not f["missed_generations"] for f in results)
    return 0 if perfect else 1


if __name__ == "__main__":
    sys.exit(main())
