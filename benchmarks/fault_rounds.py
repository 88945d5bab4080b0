"""Faults during hot reload: each round pushes reloads and, at a random moment, kills -9
either the simulator or the serving plugin process (or drops the upload mid-body). Then it
restarts what died and checks: the active artefact is intact (its bytes hash to its name)
and serving, the audit chain verifies, telemetry and audit reconcile (after `--fix` for a
kill that fell between the two writes), and every reload the simulator acknowledged is in
both. Prints the counts; exit 0 only when nothing was lost.

Usage: python benchmarks/fault_rounds.py [--rounds 100] [--seed 7]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from powerx.bundling import BuildSession
from powerx.testing import LocalSimulator

REPO = Path(__file__).resolve().parent.parent
PLUGIN_ID = "com.example.hello-python"


@dataclass
class FaultReport:
    rounds: int = 0
    simulator_kills: int = 0
    plugin_kills: int = 0
    dropped_uploads: int = 0
    acknowledged: int = 0
    failed_checks: list[str] = field(default_factory=list)
    repaired: int = 0
    lost: int = 0

    def line(self) -> str:
        return (
            f"rounds {self.rounds} | simulator kills {self.simulator_kills} | plugin kills "
            f"{self.plugin_kills} | dropped uploads {self.dropped_uploads} | acknowledged "
            f"reloads {self.acknowledged} | lost {self.lost} | reconcile repairs {self.repaired}"
            f" | failed checks {len(self.failed_checks)}"
        )


def _set_greeting(plugin: Path, text: str) -> None:
    app = plugin / "app.py"
    lines = [
        f'GREETING = "{text}"' if x.startswith("GREETING =") else x
        for x in app.read_text().splitlines()
    ]
    app.write_text("\n".join(lines) + "\n")


def _token(sim: LocalSimulator) -> str:
    assert sim.workdir is not None
    return str(json.loads((sim.workdir / "config-home" / "credentials.json").read_text())["token"])


def _drop_mid_upload(url: str, token: str, data: bytes) -> None:
    """Send headers and half the body, then close: a client whose connection drops."""
    target = httpx.URL(url)
    with socket.create_connection((target.host, target.port or 80), timeout=5) as sock:
        head = (
            f"POST /internal/debug/hot-reload HTTP/1.1\r\nHost: {target.host}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/x-tar\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        sock.sendall(head.encode() + data[: len(data) // 2])


def _check(sim: LocalSimulator, state: Path, acknowledged: set[str], report: FaultReport) -> None:
    with httpx.Client(trust_env=False, timeout=30) as client:
        for _ in range(100):  # a crashed generation is restarted with backoff
            response = client.get(f"{sim.url}/plugins/{PLUGIN_ID}/")
            if response.status_code == 200:
                break
            time.sleep(0.1)
        else:
            report.failed_checks.append(f"round {report.rounds}: plugin not serving")
    pointer = json.loads((state / "plugins" / PLUGIN_ID / "active.json").read_text())
    blob = state / "artefacts" / pointer["digest"]
    if hashlib.sha256(blob.read_bytes()).hexdigest() != pointer["digest"]:
        report.failed_checks.append(f"round {report.rounds}: active artefact corrupt")
    verify = sim.powerx("audit", "verify")
    if verify.returncode != 0:
        report.failed_checks.append(f"round {report.rounds}: audit: {verify.stderr.strip()}")
    reconciled = json.loads(sim.powerx("telemetry", "reconcile", "--fix", "--json").stdout)
    report.repaired += int(reconciled.get("repaired", 0))
    if not reconciled.get("ok"):
        report.failed_checks.append(f"round {report.rounds}: reconcile left differences")
    with sqlite3.connect(state / "telemetry.db") as db:
        telemetry_ids = {row[0] for row in db.execute("SELECT id FROM reloads")}
    with sqlite3.connect(state / "audit.db") as db:
        audit_refs = {row[0] for row in db.execute("SELECT ref FROM audit WHERE ref IS NOT NULL")}
    missing = {ref for ref in acknowledged if ref not in telemetry_ids or ref not in audit_refs}
    report.lost = len(missing)


def run(rounds: int, seed: int, work: Path) -> FaultReport:
    rng = random.Random(seed)
    plugin = work / "hello-python"
    shutil.copytree(REPO / "examples" / "hello-python", plugin)
    session = BuildSession(plugin, work / "build")
    report = FaultReport()
    acknowledged: set[str] = set()
    state = work / "sim" / "state"
    try:
        for number in range(rounds):
            report.rounds = number + 1
            (state / "host.json").unlink(missing_ok=True)
            with LocalSimulator([plugin], workdir=work / "sim") as sim:
                token = _token(sim)
                fault = rng.choice(["simulator", "plugin", "upload"])
                pushes: list[str] = []

                def push_some(
                    sim: LocalSimulator = sim,
                    token: str = token,
                    number: int = number,
                    pushes: list[str] = pushes,
                ) -> None:
                    with httpx.Client(trust_env=False, timeout=30) as client:
                        for step in range(3):
                            _set_greeting(plugin, f"round {number} push {step}")
                            artefact = session.build()
                            try:
                                response = client.post(
                                    f"{sim.url}/internal/debug/hot-reload",
                                    content=artefact.data,
                                    headers={
                                        "authorization": f"Bearer {token}",
                                        "x-powerx-digest": artefact.digest,
                                    },
                                )
                            except httpx.HTTPError:
                                return
                            if response.status_code == 200 and response.json().get("reload_id"):
                                pushes.append(response.json()["reload_id"])

                pusher = threading.Thread(target=push_some)
                pusher.start()
                time.sleep(rng.uniform(0.0, 0.25))
                assert sim.process is not None
                if fault == "simulator":
                    os.kill(sim.process.pid, signal.SIGKILL)
                    report.simulator_kills += 1
                elif fault == "plugin":
                    status = httpx.get(
                        f"{sim.url}/internal/debug/status",
                        headers={"authorization": f"Bearer {token}"},
                        trust_env=False,
                    ).json()
                    pid = status["plugins"][0]["pid"]
                    if pid:
                        with_suppressed_kill(pid)
                        report.plugin_kills += 1
                else:
                    data = session.build().data
                    _drop_mid_upload(sim.url, token, data)
                    report.dropped_uploads += 1
                pusher.join()
                acknowledged.update(pushes)
                report.acknowledged = len(acknowledged)
                if fault == "simulator":
                    sim.process.wait()
                    (state / "host.json").unlink(missing_ok=True)
                    with LocalSimulator([plugin], workdir=work / "sim") as again:
                        _check(again, state, acknowledged, report)
                else:
                    _check(sim, state, acknowledged, report)
            print(f"\r{report.line()}", end="", file=sys.stderr, flush=True)
    finally:
        session.close()
        print(file=sys.stderr)
    return report


def with_suppressed_kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="powerx-faults-") as work:
        report = run(args.rounds, args.seed, Path(work))
    print(report.line())
    for problem in report.failed_checks[:20]:
        print(f"  {problem}")
    return 0 if not report.failed_checks and report.lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
