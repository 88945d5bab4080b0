"""A day of saves: does a long session wear the simulator down?

Runs both examples (copies, in a temporary folder) in one real simulator with the dev loop
(`host start --watch`), a debugger attached to each plugin through the simulator's debug
API (a client attached, a snapshot breakpoint and a log point, both of which fire on
every request without halting), and a client requesting each plugin in a loop. Then it
saves N edits, alternating between the two plugins, and measures each one's
save-to-serving latency as `benchmarks/reload_latency.py` does: from just before the file
write to the first response that carries the new value.

The warm-up saves until the simulator's bounded buffers are full: the debug event ring
(10,000 events, replayed to SSE clients that resume) and the log ring (5,000 lines) have
both wrapped, as two live SSE followers see from the event ids. Memory that fills them is
by design; what grows after that is not. With the default traffic that takes some minutes.

At the start (after the warm-up), the middle and the end it pauses the traffic and takes
a sample of the session at rest: it waits until the replaced generations have exited and
the counts have not moved for 11 s (longer than idle connections and threads linger), then
saves once and requests each plugin once, quietly, so each connection pool holds what one
use leaves, and reads /proc (Linux only): RSS, open fds, threads and processes of the
simulator, of each plugin's processes (Python: the zygote and the generations it forks;
Node: the generations and the warm spare) and of the build tools it started (esbuild).

It prints PASS or FAIL, and exits 1 on any FAIL, for: RSS growth under 10 % from start to
end (each row), no leaked fds, threads or processes (end minus start, each row; esbuild,
a Go program, may keep up to 2 more threads), every save served, and each plugin's
last-window p50 latency within 20 % of its first window's.

    python benchmarks/soak.py                  # 2,000 reloads, windows of 500 (make soak)
    python benchmarks/soak.py --reloads 200    # shorter: windows of 50 (a quarter)
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from powerx.config import Observability
from powerx.observe.events import EventBus
from powerx.testing import LocalSimulator

REPO = Path(__file__).resolve().parent.parent
RSS_GROWTH_LIMIT = 0.10
EVENT_RING = int(inspect.signature(EventBus).parameters["capacity"].default)
LOG_RING = Observability().log_buffer
# esbuild is Go: its runtime keeps the OS threads it once needed (up to its peak of
# blocked syscalls) and never ends them, so its count can step up by one or two.
THREAD_SLACK = {"build tools": 2}
# Longer than anything idle lingers here: uvicorn (the simulator, Python plugins), Node's
# http server and httpx's pools drop an idle connection after 5 s, and anyio (under
# watchfiles) ends an idle worker thread after 10 s.
QUIET_S = 11.0
LOG_POINT_LINE = '"message":"{} '
P50_DRIFT_LIMIT = 0.20


@dataclass(frozen=True)
class Case:
    name: str
    plugin: str
    source: str  # the file edited, relative to the plugin
    greeting: str  # the greeting's line, as a format with {text}
    snapshot_at: str  # one-line statements run on every request to `/`
    log_at: str
    log_message: str


CASES = (
    Case(
        "hello-python",
        "com.example.hello-python",
        "app.py",
        'GREETING = "{text}"',
        "    host = host_for(request)",
        "    contacts = await host.list_contacts()",
        "tenant {host.tenant}",
    ),
    Case(
        "hello-node",
        "com.example.hello-node",
        "src/index.ts",
        'const GREETING = "{text}";',
        "    const url = new URL(request.url);",
        '    if (url.pathname === "/") {',
        "path {url.pathname}",
    ),
)
GROUPS = ("simulator", *(case.name for case in CASES), "build tools")


# -- /proc -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    rss_kb: int = 0
    fds: int = 0
    threads: int = 0
    processes: int = 0
    # What the fds are (socket, pipe, anon_inode:[eventpoll], a file's path), to name a leak.
    fd_kinds: Counter[str] = field(default_factory=Counter, compare=False)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.rss_kb + other.rss_kb,
            self.fds + other.fds,
            self.threads + other.threads,
            self.processes + other.processes,
            self.fd_kinds + other.fd_kinds,
        )


def _fd_kind(target: str) -> str:
    # socket:[12345] and pipe:[678]: the inode says nothing across samples; paths do.
    return target.split(":[", 1)[0] if ":[" in target else target


def _parent_and_cmdline() -> dict[int, tuple[int, str]]:
    """Every process we can see: pid -> (parent pid, command line)."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes()
        except OSError:
            continue  # it exited while we looked
        # The command name (field 2) may hold spaces and parentheses: split after its end.
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        table[int(entry.name)] = (parent, cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return table


def process_groups(simulator_pid: int) -> dict[str, list[int]]:
    """The simulator and its descendants, by who they belong to."""
    table = _parent_and_cmdline()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    groups: dict[str, list[int]] = {name: [] for name in GROUPS}
    groups["simulator"].append(simulator_pid)

    def visit(pid: int, group: str | None) -> None:
        for child in children.get(pid, []):
            cmdline = table[child][1]
            owner = group
            if owner is None:
                if "powerx.runtimes.zygote" in cmdline or "powerx.runtimes.python_shim" in cmdline:
                    owner = "hello-python"
                elif "node_shim" in cmdline:
                    owner = "hello-node"
                else:
                    owner = "build tools"
            groups[owner].append(child)
            visit(child, owner)  # what a plugin process starts is the plugin's

    visit(simulator_pid, None)
    return groups


def usage_of(pids: list[int]) -> Usage:
    total = Usage()
    for pid in pids:
        try:
            status = dict(
                line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            )
            kinds: Counter[str] = Counter()
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):  # closed while we looked
                    kinds[_fd_kind(os.readlink(f"/proc/{pid}/fd/{fd}"))] += 1
        except OSError:
            continue
        if status["State"].strip().startswith("Z"):
            total += Usage(processes=1)  # a zombie: no memory, but a process not reaped
            continue
        rss = int(status.get("VmRSS", "0 kB").split()[0])
        total += Usage(rss, sum(kinds.values()), int(status["Threads"]), 1, kinds)
    return total


def sample(simulator_pid: int) -> dict[str, Usage]:
    return {name: usage_of(pids) for name, pids in process_groups(simulator_pid).items()}


# -- the session ---------------------------------------------------------------------------


class RingWatch:
    """Follows an SSE stream of the simulator and keeps the highest event id seen: once it
    passes the ring's capacity, the ring has wrapped (it holds as much as it ever will)."""

    def __init__(
        self, url: str, headers: dict[str, str], capacity: int, count: tuple[str, ...] = ()
    ) -> None:
        self.capacity = capacity
        self.last_id = 0
        self.counted = dict.fromkeys(count, 0)  # events whose data holds each text
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._follow, args=(url, headers), daemon=True)
        self._thread.start()

    def _follow(self, url: str, headers: dict[str, str]) -> None:
        timeout = httpx.Timeout(10, read=None)
        with (
            contextlib.suppress(httpx.HTTPError),
            httpx.stream("GET", url, headers=headers, timeout=timeout, trust_env=False) as stream,
        ):
            self._response = stream
            for line in stream.iter_lines():
                if line.startswith("id: "):
                    self.last_id = max(self.last_id, int(line[4:]))
                for text in self.counted:
                    if line.startswith("data: ") and text in line:
                        self.counted[text] += 1

    @property
    def wrapped(self) -> bool:
        return self.last_id > self.capacity

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
        self._thread.join(10)


class Traffic:
    """One client per plugin requesting it in a loop (paced at ``rps``), pausable."""

    def __init__(self, urls: list[str], rps: float) -> None:
        self.urls = urls
        self.interval_s = 1 / rps if rps > 0 else 0.0
        self.running = threading.Event()
        self.stopping = threading.Event()
        self.idle = [threading.Event() for _ in urls]
        self.requests = 0
        self.failed = 0
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._loop, args=(url, idle), daemon=True)
            for url, idle in zip(urls, self.idle, strict=True)
        ]

    def _loop(self, url: str, idle: threading.Event) -> None:
        while not self.stopping.is_set():
            idle.set()
            self.running.wait()
            idle.clear()
            if self.stopping.is_set():
                break
            # A new connection per burst: a paused client holds no socket in the simulator.
            with httpx.Client(trust_env=False, timeout=30) as client:
                while self.running.is_set() and not self.stopping.is_set():
                    try:
                        ok = client.get(url).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    with self._lock:
                        self.requests += 1
                        self.failed += not ok
                    self.stopping.wait(self.interval_s)  # pacing, not waiting for state
        idle.set()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()
        self.resume()

    def resume(self) -> None:
        self.running.set()

    def pause(self) -> None:
        self.running.clear()
        for idle in self.idle:
            idle.wait(60)

    def stop(self) -> None:
        self.stopping.set()
        self.running.set()
        for thread in self._threads:
            thread.join(60)


@dataclass
class Reload:
    case: str
    latency_ms: float | None  # None: never served within the timeout


@dataclass
class Session:
    simulator: LocalSimulator
    folders: dict[str, Path]
    headers: dict[str, str]
    timeout_s: float
    reloads: list[Reload] = field(default_factory=list)
    polls: int = 0
    failed_polls: int = 0
    number: int = 0

    def url(self, case: Case) -> str:
        return f"{self.simulator.url}/plugins/{case.plugin}/"

    def save(self, case: Case, client: httpx.Client, timeout_s: float | None = None) -> Reload:
        """Edit the greeting; wait until the plugin serves it."""
        self.number += 1
        marker = f"soak-{self.number}-{time.monotonic_ns()}"
        source = self.folders[case.name] / case.source
        prefix = case.greeting.split("{")[0]
        lines = [
            case.greeting.format(text=marker) if line.startswith(prefix) else line
            for line in source.read_text().splitlines()
        ]
        started = time.perf_counter()
        source.write_text("\n".join(lines) + "\n")
        deadline = started + (timeout_s or self.timeout_s)
        latency = None
        while time.perf_counter() < deadline:
            self.polls += 1
            try:
                response = client.get(self.url(case))
            except httpx.HTTPError:
                self.failed_polls += 1
                continue
            if response.status_code != 200:
                self.failed_polls += 1
            elif marker in response.text:
                latency = (time.perf_counter() - started) * 1000
                break
        return Reload(case.name, latency)

    def status(self, client: httpx.Client) -> dict[str, Any]:
        return dict(
            client.get(f"{self.simulator.url}/internal/debug/status", headers=self.headers).json()
        )

    def attach_debugger(self, client: httpx.Client) -> None:
        """A client attached to each plugin, a snapshot and a log point on its `/` path."""
        for case in CASES:
            text = (self.folders[case.name] / case.source).read_text().splitlines()

            def line_of(prefix: str, text: list[str] = text) -> int:
                return 1 + next(i for i, line in enumerate(text) if line.startswith(prefix))

            base = f"{self.simulator.url}/internal/debug"
            client.post(f"{base}/sessions/{case.plugin}/attach", headers=self.headers)
            put = client.put(
                f"{base}/breakpoints/{case.plugin}",
                headers=self.headers,
                json={
                    "breakpoints": [
                        {
                            "file": case.source,
                            "line": line_of(case.snapshot_at),
                            "kind": "snapshot",
                        },
                        {
                            "file": case.source,
                            "line": line_of(case.log_at),
                            "log_message": case.log_message,
                        },
                    ]
                },
            )
            put.raise_for_status()

    def wait_debugging(self, client: httpx.Client, timeout_s: float = 30) -> None:
        """Until both plugins serve from a generation the debugger is in."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            plugins = self.status(client)["plugins"]
            if all(p["debugging"] and p["state"] == "running" for p in plugins):
                return
            time.sleep(0.05)
        raise RuntimeError(f"the debugger did not attach within {timeout_s:g} s")

    def settled_sample(self, client: httpx.Client) -> dict[str, Usage]:
        """A sample of the session at rest, comparable with any other. Connection pools
        drop the connections that outlived their keep-alive only when next used, and
        which of them were open depends on the traffic before: so after a quiet spell
        (see :meth:`steady`) one save goes through the dev loop's client and one request
        to each plugin through the simulator's, and each pool holds what one use leaves."""
        self.steady(client)
        if self.save(CASES[0], client).latency_ms is None:
            print("warning: the save before a sample was not served", file=sys.stderr)
        self.steady(client)
        with httpx.Client(trust_env=False, timeout=30) as probe:
            for case in CASES:
                probe.get(self.url(case)).raise_for_status()
        return self.steady(client)

    def steady(self, client: httpx.Client, timeout_s: float = 60) -> dict[str, Usage]:
        """Once each plugin serves, its launcher is warm (the next spare is up) and the
        process, thread and fd counts have not moved for QUIET_S (a replaced generation
        drains, then exits; idle connections and threads end), the figures. On timeout,
        the last figures: a count that never settles is a leak too."""
        pid = self.simulator.process.pid if self.simulator.process else 0
        deadline = time.monotonic() + timeout_s
        last: dict[str, Usage] | None = None
        steady_since = time.monotonic()
        while time.monotonic() < deadline:
            plugins = self.status(client)["plugins"]
            ready = all(p["state"] == "running" and p["launcher_warm"] for p in plugins)
            now = sample(pid)
            counts = {k: (u.fds, u.threads, u.processes) for k, u in now.items()}
            if last is None or counts != {
                k: (u.fds, u.threads, u.processes) for k, u in last.items()
            }:
                steady_since = time.monotonic()
            last = now
            if ready and time.monotonic() - steady_since >= QUIET_S:
                return now
            time.sleep(0.05)
        print("warning: the counts did not settle within the timeout", file=sys.stderr)
        assert last is not None
        return last


@contextmanager
def plugin_copies(work: Path) -> Iterator[dict[str, Path]]:
    folders = {}
    for case in CASES:
        folders[case.name] = work / case.name
        shutil.copytree(REPO / "examples" / case.name, folders[case.name], symlinks=True)
    yield folders


# -- figures ----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def served(reloads: list[Reload], case: str | None = None) -> list[float]:
    return [
        r.latency_ms
        for r in reloads
        if r.latency_ms is not None and (case is None or r.case == case)
    ]


def usage_table(samples: dict[str, dict[str, Usage]]) -> list[str]:
    rows = [
        "| processes of | when | RSS MB | open fds | threads | processes |",
        "|---|---|---|---|---|---|",
    ]
    for group in GROUPS:
        for when, figures in samples.items():
            u = figures[group]
            rows.append(
                f"| {group} | {when} | {u.rss_kb / 1024:.1f} | {u.fds} | {u.threads} "
                f"| {u.processes} |"
            )
    return rows


def latency_table(reloads: list[Reload], window: int) -> list[str]:
    rows = [
        "| reloads | python p50 ms | python p95 ms | node p50 ms | node p95 ms | not served |",
        "|---|---|---|---|---|---|",
    ]
    for first in range(0, len(reloads), window):
        part = reloads[first : first + window]
        python, node = served(part, "hello-python"), served(part, "hello-node")
        rows.append(
            f"| {first + 1}-{first + len(part)} | {percentile(python, 50):.1f} "
            f"| {percentile(python, 95):.1f} | {percentile(node, 50):.1f} "
            f"| {percentile(node, 95):.1f} | {len(part) - len(served(part))} |"
        )
    return rows


def _fd_change(before: Usage, after: Usage) -> str:
    more = after.fd_kinds - before.fd_kinds
    return f" ({', '.join(f'+{n} {kind}' for kind, n in more.most_common(5))})" if more else ""


def checks(
    start: dict[str, Usage], end: dict[str, Usage], reloads: list[Reload], window: int
) -> list[tuple[bool, str]]:
    results = []
    for group in GROUPS:
        before, after = start[group], end[group]
        if before.rss_kb:
            growth = (after.rss_kb - before.rss_kb) / before.rss_kb
            results.append(
                (
                    growth < RSS_GROWTH_LIMIT,
                    f"{group} RSS {before.rss_kb / 1024:.1f} -> {after.rss_kb / 1024:.1f} MB "
                    f"({growth:+.1%}; limit +{RSS_GROWTH_LIMIT:.0%})",
                )
            )
        for what in ("fds", "threads", "processes"):
            leaked = getattr(after, what) - getattr(before, what)
            slack = THREAD_SLACK.get(group, 0) if what == "threads" else 0
            detail = _fd_change(before, after) if what == "fds" and leaked > 0 else ""
            if slack:
                detail += f" (up to {slack} allowed: Go keeps its threads)"
            results.append((leaked <= slack, f"{group} leaked {what}: {leaked}{detail}"))
    unserved = sum(r.latency_ms is None for r in reloads)
    results.append((unserved == 0, f"reloads not served within the timeout: {unserved}"))
    # Per plugin: the two examples' latencies differ several-fold, so a p50 over both
    # would fall in the gap between them and jump with the mix.
    for case in CASES:
        first = percentile(served(reloads[:window], case.name), 50)
        last = percentile(served(reloads[-window:], case.name), 50)
        drift = (last - first) / first
        results.append(
            (
                drift <= P50_DRIFT_LIMIT,
                f"{case.name} p50 latency, last window vs first: {first:.1f} -> {last:.1f} ms "
                f"({drift:+.1%}; limit +{P50_DRIFT_LIMIT:.0%})",
            )
        )
    return results


# -- main ---------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    window = min(500, max(1, args.reloads // 4))
    with tempfile.TemporaryDirectory(prefix="powerx-soak-") as temp:
        work = Path(temp)
        with (
            plugin_copies(work) as folders,
            LocalSimulator(list(folders.values()), watch=True, workdir=work / "sim") as sim,
            httpx.Client(trust_env=False, timeout=30) as client,
        ):
            token = json.loads(
                (Path(sim.env["POWERX_CONFIG_HOME"]) / "credentials.json").read_text()
            )["token"]
            headers = {"authorization": f"Bearer {token}", "x-powerx-client": "soak"}
            session = Session(sim, folders, headers, args.timeout_s)
            session.attach_debugger(client)
            session.wait_debugging(client)
            traffic = Traffic([session.url(case) for case in CASES], args.rps)
            traffic.start()

            def save(count: int) -> None:
                for _ in range(count):
                    case = CASES[session.number % len(CASES)]
                    session.reloads.append(session.save(case, client))
                    progress(f"{len(session.reloads)}/{args.reloads} reloads")

            def take() -> dict[str, Usage]:
                traffic.pause()
                figures = session.settled_sample(client)
                traffic.resume()
                return figures

            # LocalSimulator(watch=True) returned once the watchers were armed; a save
            # not served within 2 s (a loaded machine) is simply made again.
            while session.save(CASES[0], client, timeout_s=2).latency_ms is None:
                pass
            before = take()  # not checked: shows what the full rings cost
            rings = [
                RingWatch(f"{sim.url}/internal/debug/events", headers, EVENT_RING),
                RingWatch(
                    f"{sim.url}/internal/debug/logs?tail=0",
                    headers,
                    LOG_RING,
                    tuple(LOG_POINT_LINE.format(case.log_message.split()[0]) for case in CASES),
                ),
            ]
            warmed = 0
            while warmed < args.warmup or not all(ring.wrapped for ring in rings):
                session.save(CASES[session.number % len(CASES)], client)
                warmed += 1
                progress(
                    f"warm-up: {warmed} reloads; events {rings[0].last_id}/{EVENT_RING}, "
                    f"log lines {rings[1].last_id}/{LOG_RING}"
                )
            progress(None)
            for ring in rings:
                ring.close()
            start = take()
            samples = {"before warm-up": before, f"start (after {warmed} warm-up reloads)": start}
            save(args.reloads // 2)
            samples[f"middle ({len(session.reloads)} reloads)"] = take()
            save(args.reloads - args.reloads // 2)
            samples[f"end ({len(session.reloads)} reloads)"] = take()
            traffic.stop()
            progress(None)
            snapshots = {
                case.name: client.get(
                    f"{sim.url}/internal/debug/sessions/{case.plugin}", headers=headers
                ).json()["breakpoints"][0]["hits"]
                for case in CASES
            }
    results = checks(start, list(samples.values())[-1], session.reloads, window)
    print("\n".join(usage_table(samples)))
    print()
    print("\n".join(latency_table(session.reloads, window)))
    print()
    print(
        f"traffic: {traffic.requests} requests, {traffic.failed} failed; "
        f"polls while waiting for a reload: {session.polls}, {session.failed_polls} failed; "
        f"snapshots taken: {snapshots}; log point lines during the warm-up: "
        f"{list(rings[1].counted.values())}"
    )
    for ok, text in results:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for ok, _ in results) else 1


def progress(text: str | None) -> None:
    """A progress line for a person (on a terminal only: piped, stderr stays readable);
    None ends it."""
    if sys.stderr.isatty():
        print("\n" if text is None else f"\r{text}", end="", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Linux only (reads /proc). Figures on a busy machine are noisy.",
    )
    parser.add_argument(
        "--reloads",
        type=int,
        default=2000,
        help="reloads measured, alternating between the two examples (default 2000); "
        "latency is reported per window of 500, or of a quarter of N when N < 2000",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=50,
        help="at least this many reloads before the start sample, and on until the "
        "simulator's event and log rings are full (default 50)",
    )
    parser.add_argument(
        "--rps", type=float, default=20, help="requests per second per plugin (default 20)"
    )
    parser.add_argument(
        "--timeout-s", type=float, default=10, help="give up waiting for one reload after"
    )
    args = parser.parse_args()
    if not Path("/proc/self/status").exists():
        raise SystemExit("soak.py reads /proc: run it on Linux")
    if args.reloads < 4:
        raise SystemExit("--reloads must be at least 4")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
