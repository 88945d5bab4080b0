"""Breakpoints across reloads: does a breakpoint set once hit after every reload, and what
does replaying it cost?

Runs an example plugin in a real simulator. First N reloads with no debugger (the
baseline start phase), then N reloads with a client attached and one pause breakpoint:
after each reload a request must stop at the breakpoint, in the new generation, at the
right line; the benchmark then continues it. Prints a table:

Three examples: Python (debugpy), Node (the inspector, TypeScript lines via the source
map) and Go (Delve; once attached, builds use -gcflags=all=-N -l as the dev loop's do: the
first of them recompiles the standard library, ~25 s, outside the timed phases); and Node
once more with the breakpoint set by an IDE (``node-ide``): a CDP client that behaves as
VS Code's js-debug attached with ``restart`` (it sets the breakpoint in its own inspector
session, by path and by script, is closed on each reload and reconnects). Its request is
sent right after the reload answers, before the client is back: it must halt.

- hits: reloads after which the breakpoint stopped the request (target: 100 %);
- replay: the simulator's DAP handshake + breakpoint replay into the generation (p50/p95);
- start: the reload's start phase without and with the debugger, and the difference.

    python benchmarks/breakpoint_replay.py              # 50 reloads each
    python benchmarks/breakpoint_replay.py --reloads 200 --json
    python benchmarks/breakpoint_replay.py --only node-ide --reloads 20
"""

from __future__ import annotations

import argparse
import itertools
import json
import queue
import re
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
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from powerx.bundling import BuildSession
from powerx.debug.sourcemap import SourceMap
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
    ide: bool = False  # the breakpoint is set by a js-debug-like IDE, not the HTTP API


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
    "node-ide": Case(
        "node (IDE)",
        "com.example.hello-node",
        "hello-node",
        "src/index.ts",
        'const GREETING = "{text}";',
        "    const url = new URL(request.url);",
        ide=True,
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


class JsDebugLikeClient:
    """An IDE on a Node plugin's inspector endpoint, doing what js-debug does on each
    (re)connect: enable the domains, set the breakpoint "by path" (the TypeScript file's
    URL) and, once the bundle's script and source map are known, "by script" at the
    mapped place, then let the target run. It is closed with 1012 on a reload and
    reconnects when told to (js-debug comes back 100-200 ms later)."""

    def __init__(self, url: str, source: Path, line: int) -> None:
        self.url = url
        self.source = source.resolve()
        self.line = line  # 1-based, in the TypeScript file
        self.socket: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._answers: dict[int, dict[str, Any]] = {}
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._pauses: queue.Queue[dict[str, Any]] = queue.Queue()
        self._arrived = threading.Condition()
        self.close_code: int | None = None

    def connect(self, attempts: int = 20) -> None:
        """Connect and set the breakpoint; a socket closed for a reload while this runs
        (the first attach restarts the plugin) is reconnected, as js-debug does."""
        for _ in range(attempts):
            try:
                self._connect_once()
                return
            except (ConnectionClosed, TimeoutError, OSError):
                continue
        raise RuntimeError("the IDE client could not stay connected")

    def _connect_once(self) -> None:
        self._answers.clear()
        self._events = queue.Queue()
        self._pauses = queue.Queue()
        self.close_code = None
        opened: queue.Queue[ClientConnection | Exception] = queue.Queue()
        threading.Thread(target=self._read, args=(opened,), daemon=True).start()
        socket = opened.get(timeout=15)
        if isinstance(socket, Exception):
            raise socket
        self.socket = socket
        self.call("Runtime.enable")
        self.call("Debugger.enable")
        by_path = re.escape(self.source.as_uri())
        self.call(
            "Debugger.setBreakpointByUrl",
            {"urlRegex": by_path, "lineNumber": self.line - 1, "columnNumber": 0},
        )
        script = self._bundle_script()
        where = script["map"].generated(str(self.source), self.line - 1)
        if where is not None:
            self.call(
                "Debugger.setBreakpoint",
                {
                    "location": {
                        "scriptId": script["id"],
                        "lineNumber": where[0],
                        "columnNumber": where[1],
                    }
                },
            )
        self.call("Runtime.runIfWaitingForDebugger")

    def _bundle_script(self, timeout_s: float = 10.0) -> dict[str, Any]:
        """The first parsed script with a source map naming our file (Debugger.enable
        reports every script already loaded)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            event = self._events.get(timeout=max(0.01, deadline - time.monotonic()))
            params = event.get("params") or {}
            if event.get("method") != "Debugger.scriptParsed" or not params.get("sourceMapURL"):
                continue
            url = str(params["url"])
            if not url.startswith("file://"):
                continue
            bundle = Path(url.removeprefix("file://"))
            map_file = bundle.parent / str(params["sourceMapURL"])
            if not map_file.is_file():
                continue
            source_map = SourceMap.load(map_file)
            if str(self.source) in source_map.sources:
                return {"id": params["scriptId"], "map": source_map}
        raise TimeoutError("the bundle's script was not reported")

    def _read(self, opened: queue.Queue[ClientConnection | Exception]) -> None:
        try:
            socket = connect(self.url, max_size=None, compression=None, ping_interval=None)
        except (OSError, TimeoutError, ConnectionClosed) as error:
            opened.put(error)
            return
        with socket:
            opened.put(socket)
            try:
                while True:
                    message = json.loads(socket.recv())
                    if "id" in message:
                        with self._arrived:
                            self._answers[int(message["id"])] = message
                            self._arrived.notify_all()
                    elif message.get("method") == "Debugger.paused":
                        self._pauses.put(message)
                    else:
                        self._events.put(message)
            except ConnectionClosed:
                pass
            finally:
                with self._arrived:
                    self.close_code = socket.close_code
                    self._arrived.notify_all()

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        assert self.socket is not None
        number = next(self._ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params or {}}))
        with self._arrived:
            self._arrived.wait_for(
                lambda: number in self._answers or self.close_code is not None, 10
            )
            if number not in self._answers:
                raise ConnectionClosed(None, None)
            return dict(self._answers.pop(number).get("result") or {})

    def wait_closed(self, timeout_s: float = 15.0) -> int | None:
        """The close code the endpoint sent (1012 on a reload)."""
        with self._arrived:
            self._arrived.wait_for(lambda: self.close_code is not None, timeout_s)
            return self.close_code

    def resume_when_paused(self, timeout_s: float = 10.0) -> bool:
        """The target is paused (Node tells a session that enables the debugger while
        paused): continue, as a user pressing F5."""
        try:
            self._pauses.get(timeout=timeout_s)
        except queue.Empty:
            return False
        self.call("Debugger.resume")
        return True

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()


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

    def attach(self, line: int) -> JsDebugLikeClient | None:
        """A client and one pause breakpoint at ``line``: the console's way (the HTTP API),
        or an IDE's (its own inspector session, mirrored into the set)."""
        plugin = self.case.plugin
        if not self.case.ide:
            self.http.post(f"/internal/debug/sessions/{plugin}/attach", headers=self.headers)
            put = self.http.put(
                f"/internal/debug/breakpoints/{plugin}",
                json={"breakpoints": [{"file": self.case.source, "line": line}]},
                headers=self.headers,
            )
            put.raise_for_status()
            return None
        access = self.http.get(f"/internal/debug/sessions/{plugin}/ide", headers=self.headers)
        access.raise_for_status()
        ide = JsDebugLikeClient(
            access.json()["websocket"], self.plugin_dir / self.case.source, line
        )
        ide.connect()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if any(bp["line"] == line for bp in self.session()["breakpoints"]):
                break
            time.sleep(0.005)
        return ide

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

            ide = bench.attach(line)
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
                resumed = False
                if ide is not None:  # the IDE comes back after the reload and continues
                    ide.wait_closed()
                    ide.connect()
                    resumed = paused is not None and ide.resume_when_paused()
                if paused is not None and not resumed:
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
            if ide is not None:
                ide.close()
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
        "--only", choices=sorted(CASES), action="append", help="one case (repeatable)"
    )
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    args = parser.parse_args()
    results = [
        run(CASES[name], args.reloads) for name in args.only or ["python", "node", "node-ide", "go"]
    ]
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
