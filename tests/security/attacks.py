"""Attacks on the simulator, run against a real one: a hostile Python and a hostile Node
plugin (``plugins/``) try every way around the egress guards, the guards' own state and
the tenant binding, and what only an OS boundary stops (containment: the network without
the guard, the simulator's secrets, each other's run tree and process, /proc); this
harness, as a client, tries the upload and HTTP surface. Victim servers on this machine
(a TCP and a UDP port on every address, and one on the machine's own address at the
simulator's port) record what reaches them; containment attempts are judged on their
evidence (``containment.py``).

``run_attacks()`` returns every attempt with whether it got through, plus the audit rows
and metrics the simulator kept. ``report.py`` prints the table (``make security``);
``test_attacks.py`` asserts that nothing got through and that each block the simulator
saw was counted and audited.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import select
import shutil
import socket
import socketserver
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from powerx.bundling.pack import pack
from powerx.bundling.session import BuildSession
from powerx.paths import run_root
from powerx.testing import LocalSimulator, WaitTimeout, wait_until
from tests.security.containment import Case, Facts, proof

PLUGINS = Path(__file__).resolve().parent / "plugins"
PYTHON_ID = "com.powerx.attack-python"
NODE_ID = "com.powerx.attack-node"
OTHER_TENANT = "globex"
HEADER_TIMEOUT_S = 1.0  # the simulator's, in the config this harness writes
UPLOAD = "upload (client)"
HTTP = "HTTP surface (client)"
# What only an OS boundary stops (plugins/*/containment.*): the attacker, and its target.
CONTAINMENT = {
    "containment (Python plugin)": (PYTHON_ID, NODE_ID),
    "containment (Node plugin)": (NODE_ID, PYTHON_ID),
}


@dataclass(frozen=True)
class Attempt:
    area: str
    name: str
    through: bool
    detail: str
    evidence: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass
class Findings:
    attempts: list[Attempt]
    audit: list[dict[str, Any]]
    metrics: str
    reached_victims: list[str] = field(default_factory=list)

    def areas(self) -> dict[str, tuple[int, int]]:
        """area -> (attempts, got through), in the order attempted."""
        table: dict[str, tuple[int, int]] = {}
        for attempt in self.attempts:
            count, through = table.get(attempt.area, (0, 0))
            table[attempt.area] = (count + 1, through + attempt.through)
        return table


# -- victims -------------------------------------------------------------------------


class _Recorder:
    """What reached the victims: one line per connection or datagram."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.lock = threading.Lock()

    def add(self, line: str) -> None:
        with self.lock:
            self.lines.append(line)


def _tcp_victim(host: str, port: int, recorder: _Recorder) -> socketserver.ThreadingTCPServer:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.request.settimeout(3)
            try:
                line = self.rfile.readline(200).decode(errors="replace").strip()
            except OSError:
                line = ""
            where = "{}:{}".format(*self.server.server_address[:2])
            recorder.add(f"tcp {where} {line or '(no data)'}")

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _udp_victim(recorder: _Recorder) -> socketserver.ThreadingUDPServer:
    class Handler(socketserver.DatagramRequestHandler):
        def handle(self) -> None:
            recorder.add(f"udp {self.rfile.read(200).decode(errors='replace').strip()}")

    server = socketserver.ThreadingUDPServer(("0.0.0.0", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def machine_address() -> str | None:
    """A non-loopback IPv4 address of this machine (the one its default route uses)."""
    for probe in ("192.0.2.1", "10.255.255.255", "8.8.8.8"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect((probe, 9))
            except OSError:
                continue
            address = str(sock.getsockname()[0])
            if not address.startswith(("127.", "0.")):
                return address
    return None


# -- plugin-side attempts ----------------------------------------------------------


def _plugin_attempts(sim: LocalSimulator, plugin: str, targets: dict[str, Any]) -> list[Attempt]:
    response = sim.client.post(f"{sim.url}/plugins/{plugin}/attack", json=targets, timeout=120)
    if response.status_code != 200:
        raise RuntimeError(
            f"{plugin} did not run its attacks: {response.status_code} {response.text}\n"
            f"simulator output:\n{sim.output()[-3000:]}"
        )
    return [
        Attempt(a["area"], a["attempt"], bool(a["through"]), a["detail"], a.get("evidence", {}))
        for a in response.json()
    ]


def _simulator_facts(sim: LocalSimulator) -> Facts:
    """Where the simulator's run trees are and which pids serve: checked, since evidence
    judged against a wrong run root would pass for containment."""
    assert sim.process is not None
    # LocalSimulator drops POWERX_* from the simulator's environment: a POWERX_RUN_DIR
    # set here would name another root, and the check below says so.
    root = run_root(sim.workdir / "state")
    plugins = sim.status()["plugins"]
    for plugin in plugins:
        if next(root.glob(f"**/{plugin['digest']}"), None) is None:
            raise RuntimeError(f"no run tree of {plugin['id']} under {root}")
    pids = {plugin["id"]: int(plugin["pid"]) for plugin in plugins}
    return Facts(run_root=root, simulator_pid=sim.process.pid, plugin_pids=pids)


def _judged(attempts: list[Attempt], facts: Facts) -> list[Attempt]:
    """Containment attempts judged on their evidence (those on the network are left to
    the victims: see ``_confirmed``)."""
    judged = []
    for attempt in attempts:
        if attempt.area in CONTAINMENT and attempt.evidence.get("kind") != "network":
            attacker, other = CONTAINMENT[attempt.area]
            seen = proof(Case(attempt.evidence, attempt.name, attacker, other, facts))
            detail = attempt.detail + (f" [harness: {seen}]" if seen else "")
            attempt = replace(attempt, through=seen is not None, detail=detail)
        judged.append(attempt)
    return judged


# -- client-side attempts: uploads ---------------------------------------------------


def _members(data: bytes) -> list[tuple[str, bytes]]:
    members = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        for member in archive.getmembers():
            handle = archive.extractfile(member)
            if handle is not None:
                members.append((member.name, handle.read()))
    return members


def _replaced(data: bytes, name: str, content: bytes | None) -> bytes:
    """The archive with one file replaced (or left out, with ``content`` None)."""
    kept = [(n, c) for n, c in _members(data) if n != name]
    return pack(kept + ([(name, content)] if content is not None else []))


def _upload_attempts(sim: LocalSimulator, token: str, state: Path) -> list[Attempt]:
    work = state.parent / "upload-work"
    plugin = work / "attack-python"
    shutil.copytree(PLUGINS / "attack-python", plugin)
    session = BuildSession(plugin, work / "build")
    try:
        good = session.build().data
        manifest = plugin / "powerx.plugin.yaml"
        original = manifest.read_text()
        manifests = {}
        for name, egress in (
            ("egress_production_host_with_port", "api.powerx.io:443"),
            ("egress_wildcard_over_production", "'*.io'"),
        ):
            manifest.write_text(original.replace("  - allowed.example", f"  - {egress}"))
            manifests[name] = session.build().data
    finally:
        session.close()
    info = json.loads(dict(_members(good))["artefact.json"])
    cases: dict[str, tuple[bytes, str]] = {
        "artefact_json_missing": (_replaced(good, "artefact.json", None), PYTHON_ID),
        "artefact_json_not_json": (_replaced(good, "artefact.json", b"{not json"), PYTHON_ID),
        "artefact_json_wrong_types": (
            _replaced(good, "artefact.json", json.dumps({**info, "runnable": 5}).encode()),
            PYTHON_ID,
        ),
        "artefact_json_absolute_runnable": (
            _replaced(
                good, "artefact.json", json.dumps({**info, "runnable": "/etc/hosts"}).encode()
            ),
            PYTHON_ID,
        ),
        "artefact_json_dotdot_runnable": (
            _replaced(
                good, "artefact.json", json.dumps({**info, "runnable": "src/../../x.py"}).encode()
            ),
            PYTHON_ID,
        ),
        "upload_announced_as_another_plugin": (good, NODE_ID),
        **{name: (data, PYTHON_ID) for name, data in manifests.items()},
    }
    attempts = []
    for name, (data, announced) in cases.items():
        blob = state / "artefacts" / hashlib.sha256(data).hexdigest()
        known = blob.exists()  # the unchanged archive was stored when it was mounted
        try:
            response = sim.client.post(
                f"{sim.url}/internal/debug/hot-reload",
                content=data,
                headers={"authorization": f"Bearer {token}", "x-powerx-plugin": announced},
                timeout=60,
            )
        except httpx.HTTPError as error:
            attempts.append(Attempt(UPLOAD, name, True, f"the simulator failed: {error!r}"))
            continue
        stored = blob.exists() and not known
        through = response.status_code >= 500 or response.is_success or stored
        detail = f"{response.status_code} {_error_code(response)}"
        attempts.append(Attempt(UPLOAD, name, through, detail + (" (stored)" if stored else "")))
    return attempts


def _error_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:80]
    return str(body.get("error")) if isinstance(body, dict) else response.text[:80]


# -- client-side attempts: the HTTP surface -------------------------------------------


def _deep_json_attempts(sim: LocalSimulator, token: str) -> list[Attempt]:
    body = "[" * 100_000 + "]" * 100_000
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    routes = {
        "deep_json_rollback": ("POST", "/internal/debug/rollback"),
        "deep_json_telemetry": ("POST", "/internal/debug/telemetry"),
        "deep_json_breakpoints": ("PUT", f"/internal/debug/breakpoints/{PYTHON_ID}"),
        "deep_json_pending_reload": ("POST", "/internal/debug/hot-reload/pending"),
    }
    attempts = []
    for name, (method, path) in routes.items():
        try:
            response = sim.client.request(method, sim.url + path, content=body, headers=headers)
        except httpx.HTTPError as error:
            attempts.append(Attempt(HTTP, name, True, f"the simulator failed: {error!r}"))
            continue
        detail = f"{response.status_code} {_error_code(response)}"
        attempts.append(Attempt(HTTP, name, response.status_code >= 500, detail))
    return attempts


def _slow_headers_attempt(sim: LocalSimulator) -> Attempt:
    """Send a request's headers a byte at a time: the simulator must answer 408 and close
    once its header timeout has passed; still open well after it, the attempt got through."""
    url = httpx.URL(sim.url)
    drip = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 10_000
    deadline = time.monotonic() + HEADER_TIMEOUT_S + 5
    with socket.create_connection((url.host, url.port or 80), timeout=5) as sock:
        for byte in drip:
            if time.monotonic() > deadline:
                return Attempt(HTTP, "slow_headers", True, "still open after the header timeout")
            try:
                sock.sendall(bytes([byte]))
            except OSError as error:
                return Attempt(HTTP, "slow_headers", False, f"closed by the simulator ({error})")
            # The pace of the drip: a slow client, not a wait for the server's state.
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                answer = sock.recv(200)
                first = answer.split(b"\r\n", 1)[0].decode(errors="replace")
                return Attempt(HTTP, "slow_headers", False, f"closed by the simulator: {first!r}")
    return Attempt(HTTP, "slow_headers", True, "the whole drip was read without a timeout")


def _metrics_attempt(sim: LocalSimulator) -> Attempt:
    response = sim.client.get(sim.url + "/metrics")
    return Attempt(
        HTTP, "metrics_without_credential", response.status_code == 200, str(response.status_code)
    )


# -- the run ------------------------------------------------------------------------


def _write_config(workdir: Path) -> None:
    """The simulator finds ./config/plugins/debug/host_simulator.yaml in its folder."""
    config = workdir / "config" / "plugins" / "debug" / "host_simulator.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(f"header_timeout_s: {HEADER_TIMEOUT_S}\n")


def _audit(sim: LocalSimulator) -> list[dict[str, Any]]:
    result = sim.powerx("audit", "list", "--json", "--limit", "5000")
    if result.returncode != 0:
        raise RuntimeError(f"powerx audit list failed: {result.stderr}")
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def blocks_reported(attempts: list[Attempt], plugin_area_prefix: str) -> int:
    """Attempts of a plugin that its guard refused (and so reported to the simulator)."""
    return sum(
        1
        for a in attempts
        if a.area.endswith(plugin_area_prefix)
        and not a.through
        and ("powerx:" in a.detail or "EACCES" in a.detail)
    )


def egress_metric(metrics: str, plugin: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("debug_egress_blocked_total{") and f'plugin="{plugin}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


@contextlib.contextmanager
def _victims() -> Iterator[tuple[_Recorder, list[socketserver.BaseServer]]]:
    recorder = _Recorder()
    servers: list[socketserver.BaseServer] = []
    try:
        yield recorder, servers
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def run_attacks() -> Findings:
    with (
        _victims() as (recorder, servers),
        tempfile.TemporaryDirectory(prefix="powerx-sec-") as tmp,
    ):
        workdir = Path(tmp)
        _write_config(workdir)
        tcp = _tcp_victim("0.0.0.0", 0, recorder)
        udp = _udp_victim(recorder)
        servers += [tcp, udp]
        plugins = [PLUGINS / "attack-python", PLUGINS / "attack-node"]
        with LocalSimulator(plugins, workdir=workdir) as sim:
            token = json.loads((workdir / "config-home" / "credentials.json").read_text())["token"]
            machine = machine_address()
            simulator_port = httpx.URL(sim.url).port or 80
            at_machine = False
            if machine is not None:
                # Another service at the simulator's port, on the machine's own address.
                with contextlib.suppress(OSError):
                    servers.append(_tcp_victim(machine, simulator_port, recorder))
                    at_machine = True
            targets = {
                "victim_tcp": tcp.server_address[1],
                "victim_udp": udp.server_address[1],
                "machine_address": machine,
                "victim_at_machine_simulator_port": at_machine,
                "other_tenant": OTHER_TENANT,
            }
            attempts = _plugin_attempts(sim, PYTHON_ID, targets)
            attempts += _plugin_attempts(sim, NODE_ID, targets)
            attempts = _judged(attempts, _simulator_facts(sim))
            attempts += _upload_attempts(sim, token, workdir / "state")
            attempts += _deep_json_attempts(sim, token)
            attempts.append(_slow_headers_attempt(sim))
            attempts.append(_metrics_attempt(sim))
            metrics = sim.client.get(
                sim.url + "/metrics", headers={"authorization": f"Bearer {token}"}
            ).text
            audit = _audit(sim)
            expected = sum(egress_metric(metrics, p) for p in (PYTHON_ID, NODE_ID))

            # Audit rows are written just after the refusal is counted: wait for them. Rows
            # that never come are a finding of the report, not a crash of it.
            def audited() -> bool:
                nonlocal audit
                audit = _audit(sim)
                return _egress_rows(audit) >= expected

            with contextlib.suppress(WaitTimeout):
                wait_until(audited, timeout_s=10)
        reached = list(recorder.lines)
    return Findings(_confirmed(attempts, reached), audit, metrics, reached)


def _confirmed(attempts: list[Attempt], reached: list[str]) -> list[Attempt]:
    """What a victim saw got through, whatever the plugin concluded; traffic no attempt
    names (a connection that sent nothing) is an attempt of its own that got through."""
    unattributed = list(reached)
    confirmed = []
    for attempt in attempts:
        marker = re.compile(rf"(?<!\w){re.escape(attempt.name)}(?!\w)")
        seen = [line for line in reached if marker.search(line)]
        unattributed = [line for line in unattributed if line not in seen]
        if seen:
            attempt = replace(attempt, through=True, detail=f"{attempt.detail} [victim: {seen[0]}]")
        elif attempt.area in CONTAINMENT and attempt.evidence.get("kind") == "network":
            attempt = replace(attempt, through=False)  # refused in its own namespace, say
        confirmed.append(attempt)
    confirmed += [Attempt("victim servers", "unattributed", True, line) for line in unattributed]
    return confirmed


def _egress_rows(audit: list[dict[str, Any]]) -> int:
    return sum(1 for row in audit if row["action"] == "egress.blocked")
