"""Save-to-serving latency of hot reload, against `uvicorn --reload` and `nodemon`.

For each edit: change a constant in the plugin's source, then request the plugin until
a response carries the new value. Latency = time from just before the file write to
that first response. Every request is counted; a non-200 or a refused connection is a
failed request. Prints a table (markdown) and, with --json, the raw figures.

    python benchmarks/reload_latency.py                # 200 edits each, all tools
    python benchmarks/reload_latency.py --edits 1000 --only powerx-python
    python benchmarks/reload_latency.py --only powerx-heavy --only uvicorn-heavy

The heavy rows serve one FastAPI app (pydantic models, SQLAlchemy on SQLite, httpx: about
a second of imports) twice: as a handler plugin that declares those in requirements.txt
(powerx installs them with uv into the plugin's environment and its zygote imports them
once), and under `uvicorn --reload` in a virtualenv with the same packages (each save
restarts the process, which imports them again).
The heavy backend rows serve the same app as a backend plugin: a program on PORT
(`python -m uvicorn` from the plugin's environment, which powerx restarts beside the
serving one on each save), next to `uvicorn --reload` on the same files.

The heavy Node rows serve a TypeScript plugin importing express, lodash and TypeScript's
compiler (about 0.4 s of evaluation; from npm's cache, filled by `make bench`): powerx
installs its package.json into its node_modules, leaves the packages out of each reload's
bundle and has its warm spares load them (from V8's code cache) before the swap; nodemon
restarts a server with the same imports on each save.
    python benchmarks/reload_latency.py --edits 30 --only powerx-heavy-node --only nodemon-heavy

    python benchmarks/reload_latency.py --edits 50 --only powerx-go --only go-restart

Two Go rows: the Go example (examples/hello-go) under powerx, which runs `go build` on each
save and starts the new binary beside the old one, and the same example the way a Go
developer without the simulator works: a watcher that on each save stops the server, runs
`go build` and starts the binary again (watchfiles' CLI, the Go counterpart of nodemon;
warm build cache for both). Requests carry the signed tenant context the example checks.

The backend rows run the backend examples (their own server on PORT) under powerx, and the
same server files under `uvicorn --reload` and `nodemon`.

Three nodemon rows: the plain JavaScript server is the fastest nodemon can be (no build);
the TypeScript one is the same server in TypeScript, rebuilt with esbuild on each restart,
which is how nodemon runs a TypeScript app like the powerx Node example; the third is that
TypeScript server calling a stand-in host API per request, as the example does.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from powerx.config import ContextSigning, Identity
from powerx.environments import find_uv
from powerx.host.identity import ContextSigner
from powerx.testing import LocalSimulator

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / "benchmarks" / "node_modules" / ".bin"
NODEMON = BIN / "nodemon"
ESBUILD = BIN / "esbuild"
# In the order they run by default: each powerx row next to the tools it is compared with.
TOOLS = (
    "powerx-python",
    "uvicorn",
    "powerx-heavy",
    "uvicorn-heavy",
    "powerx-heavy-backend",
    "uvicorn-heavy-backend",
    "powerx-node",
    "nodemon",
    "nodemon-ts",
    "nodemon-host",
    "powerx-heavy-node",
    "nodemon-heavy",
    "powerx-backend-python",
    "uvicorn-backend",
    "powerx-backend-node",
    "nodemon-backend",
    "powerx-go",
    "go-restart",
)
GO_ID = "com.example.hello-go"
PHASES = re.compile(r"build (\d+) · upload (\d+) · start (\d+) · swap\s+(\d+)")

UVICORN_APP = """from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

GREETING = "start"


async def home(request):
    return JSONResponse({"greeting": GREETING})


app = Starlette(routes=[Route("/", home)])
"""

HEAVY_REQUIREMENTS = "fastapi\npydantic\nsqlalchemy\nhttpx\n"
HEAVY_ID = "com.example.heavy-python"
HEAVY_MANIFEST = f"""id: {HEAVY_ID}
name: Heavy Python
version: 1.0.0
runtime: python3.11
entry: app.py:app
host:
  api: ">=2.3 <3"
permissions: []
"""
HEAVY_APP = """import httpx
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import Integer, String, create_engine, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.pool import StaticPool

GREETING = "start"


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(String(200))


engine = create_engine(
    "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
)
Base.metadata.create_all(engine)
with Session(engine) as session:
    session.add(Note(text="first"))
    session.commit()


class Greeting(BaseModel):
    greeting: str
    notes: int
    httpx: str


app = FastAPI()


@app.get("/", response_model=Greeting)
async def home() -> Greeting:
    with Session(engine) as session:
        notes = session.scalar(select(func.count()).select_from(Note)) or 0
    return Greeting(greeting=GREETING, notes=notes, httpx=httpx.__version__)
"""

# The heavy app as a backend program: the same FastAPI app, run by uvicorn on PORT.
HEAVY_BACKEND_ID = "com.example.heavy-backend"
HEAVY_BACKEND_MANIFEST = f"""id: {HEAVY_BACKEND_ID}
name: Heavy Python backend
version: 1.0.0
backend:
  entry: python -m uvicorn app:app --host 127.0.0.1 --port $PORT --log-level warning
  health: /
routes:
  basePath: /api/v1
permissions: []
"""

# What the heavy Node plugin imports: benchmarks/package.json installs the same versions
# (so npm's cache has them), for the plugin and for nodemon's server.
HEAVY_NODE_PACKAGES = ("express", "lodash", "typescript")
HEAVY_NODE_ID = "com.example.heavy-node"
HEAVY_NODE_MANIFEST = f"""id: {HEAVY_NODE_ID}
name: Heavy Node
version: 1.0.0
runtime: node18
entry: src/index.ts
host:
  api: "^2.3"
"""
HEAVY_NODE_PLUGIN = """import express from "express";
import _ from "lodash";
import ts from "typescript";

const GREETING = "start";
const router = express.Router();

export default {
  async fetch(request: Request): Promise<Response> {
    return Response.json({
      greeting: GREETING,
      typescript: ts.version,
      words: _.words("a heavy node plugin").length,
      router: typeof router,
    });
  },
};
"""
HEAVY_NODE_SERVER = """const http = require('node:http');
const express = require('express');
const _ = require('lodash');
const ts = require('typescript');

const GREETING = "start";
const router = express.Router();

http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({
    greeting: GREETING,
    typescript: ts.version,
    words: _.words('a heavy node plugin').length,
    router: typeof router,
  }));
}).listen(Number(process.env.PORT), '127.0.0.1');
"""

NODE_APP = """const http = require('node:http');
const GREETING = "start";
http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ greeting: GREETING }));
}).listen(Number(process.env.PORT), '127.0.0.1');
"""

NODE_TS_APP = """import { createServer, IncomingMessage, ServerResponse } from "node:http";

const GREETING: string = "start";

createServer((req: IncomingMessage, res: ServerResponse) => {
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ greeting: GREETING }));
}).listen(Number(process.env.PORT), "127.0.0.1");
"""


# The example plugins answer `/` after one host API call (contacts.list). The same app
# under nodemon calls a stand-in host API, so each restart pays what a fresh Node process
# pays for its first fetch(), as a plugin run by nodemon would.
NODE_TS_HOST_APP = """import { createServer, IncomingMessage, ServerResponse } from "node:http";

const GREETING: string = "start";

createServer(async (req: IncomingMessage, res: ServerResponse) => {
  const contacts = (await (await fetch(`${process.env.HOST_API}/contacts`)).json()) as unknown[];
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ greeting: GREETING, contacts: contacts.length }));
}).listen(Number(process.env.PORT), "127.0.0.1");
"""

HOST_API_STANDIN = """const http = require('node:http');
const contacts = JSON.stringify([{ id: 'c1', name: 'Ada Lovelace', email: 'ada@example.com' }]);
http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(contacts);
}).listen(Number(process.env.PORT), '127.0.0.1');
"""


@dataclass
class Result:
    tool: str
    latencies_ms: list[float] = field(default_factory=list)
    edits: int = 0
    served: int = 0
    requests: int = 0
    failed_requests: int = 0
    phases: dict[str, float] = field(default_factory=dict)
    broken_edits: int = 0
    broken_kept_serving: int = 0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[index]

    @property
    def success(self) -> float:
        return 100.0 * self.served / self.edits if self.edits else 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def set_constant(path: Path, prefix: str, line: str) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(line if x.startswith(prefix) else x for x in lines) + "\n")


def check_broken_edit(
    result: Result,
    url: str,
    breaker: Callable[[], None],
    client: httpx.Client,
    settle_s: float = 0.5,
) -> None:
    """Save a syntax error; the generation that served before must go on serving."""
    before = client.get(url).text
    breaker()
    result.broken_edits += 1
    time.sleep(settle_s)  # several times the reload latency: a reload would have happened
    after = client.get(url)
    if after.status_code == 200 and after.text == before:
        result.broken_kept_serving += 1


def measure(
    result: Result,
    url: str,
    edit: Callable[[str], None],
    edits: int,
    gap_s: float,
    timeout_s: float,
    client: httpx.Client,
    breaker: Callable[[], None] | None = None,
    broken_every: int = 0,
) -> None:
    for number in range(edits):
        if breaker is not None and broken_every and number and number % broken_every == 0:
            check_broken_edit(result, url, breaker, client)
        marker = f"edit-{number}-{time.monotonic_ns()}"
        started = time.perf_counter()
        edit(marker)
        result.edits += 1
        deadline = started + timeout_s
        while time.perf_counter() < deadline:
            result.requests += 1
            try:
                response = client.get(url)
            except httpx.HTTPError:
                result.failed_requests += 1
                time.sleep(0.002)
                continue
            if response.status_code != 200:
                result.failed_requests += 1
            elif marker in response.text:
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
                result.served += 1
                break
        time.sleep(gap_s)
        if sys.stderr.isatty():  # a progress line for a person; piped, only the table
            print(f"\r{result.tool}: {number + 1}/{edits}", end="", file=sys.stderr, flush=True)
    if sys.stderr.isatty():
        print(file=sys.stderr)


def wait_up(url: str, client: httpx.Client, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if client.get(url).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def heavy_app(folder: Path) -> Path:
    """The heavy FastAPI app, as a plugin folder (its manifest is unused by uvicorn)."""
    folder.mkdir()
    (folder / "app.py").write_text(HEAVY_APP)
    (folder / "requirements.txt").write_text(HEAVY_REQUIREMENTS)
    (folder / "powerx.plugin.yaml").write_text(HEAVY_MANIFEST)
    return folder


def heavy_node_versions() -> dict[str, str]:
    """The heavy Node packages at the versions benchmarks/package.json pins."""
    pinned = json.loads((REPO / "benchmarks" / "package.json").read_text())["devDependencies"]
    if not (REPO / "benchmarks" / "node_modules" / "typescript").is_dir():
        raise SystemExit(
            "benchmark packages missing: run `make bench` (or `npm ci` in benchmarks/)"
        )
    return {name: pinned[name] for name in HEAVY_NODE_PACKAGES}


def heavy_node_plugin(folder: Path) -> Path:
    """The heavy Node plugin: its package.json names the packages, installed by powerx at
    its first start (from npm's cache)."""
    (folder / "src").mkdir(parents=True)
    (folder / "plugin.yaml").write_text(HEAVY_NODE_MANIFEST)
    (folder / "src" / "index.ts").write_text(HEAVY_NODE_PLUGIN)
    pinned = json.loads((REPO / "benchmarks" / "package.json").read_text())["devDependencies"]
    package = {
        "name": "heavy-node",
        "private": True,
        "version": "1.0.0",
        "dependencies": heavy_node_versions(),
        "devDependencies": {"esbuild": pinned["esbuild"]},
    }
    (folder / "package.json").write_text(json.dumps(package, indent=2) + "\n")
    return folder


def bench_powerx(
    runtime: str, edits: int, gap_s: float, timeout_s: float, work: Path, broken_every: int = 0
) -> Result:
    name = {
        "python": "hello-python",
        "node": "hello-node",
        "heavy": "heavy-python",
        "heavy node": "heavy-node",
    }[runtime]
    plugin = work / name
    if runtime == "heavy":
        heavy_app(plugin)
    elif runtime == "heavy node":
        heavy_node_plugin(plugin)
    else:
        shutil.copytree(REPO / "examples" / name, plugin, symlinks=True)
    if runtime in ("python", "heavy"):
        source, prefix = plugin / "app.py", "GREETING ="
        plugin_id = HEAVY_ID if runtime == "heavy" else "com.example.hello-python"

        def edit(marker: str) -> None:
            set_constant(source, prefix, f'GREETING = "{marker}"')

        def breaker() -> None:
            set_constant(source, prefix, "GREETING = (")
    else:
        source, prefix, plugin_id = (
            plugin / "src/index.ts",
            "const GREETING",
            HEAVY_NODE_ID if runtime == "heavy node" else "com.example.hello-node",
        )

        def edit(marker: str) -> None:
            set_constant(source, prefix, f'const GREETING = "{marker}";')

        def breaker() -> None:
            set_constant(source, prefix, "const GREETING = ;")

    result = Result(f"powerx ({runtime})")
    with (
        LocalSimulator([plugin], watch=True, workdir=work / f"sim-{name}") as sim,
        httpx.Client(trust_env=False, timeout=10) as client,
    ):
        url = f"{sim.url}/plugins/{plugin_id}/"
        # The watchers are armed (so build caches are warm) by now; a heavy plugin's first
        # start installs its dependencies (from uv's cache after the first run).
        wait_up(url, client, timeout_s=300)
        measure(result, url, edit, edits, gap_s, timeout_s, client, breaker, broken_every)
        found = [tuple(map(float, m)) for m in PHASES.findall(sim.output())]
        if found:
            for index, phase in enumerate(("build", "upload", "start", "swap")):
                result.phases[phase] = statistics.median(f[index] for f in found)
    return result


def go_example(work: Path, name: str) -> tuple[Path, Callable[[str], None], Callable[[], None]]:
    """A copy of examples/hello-go, with an edit of its greeting and a broken edit."""
    plugin = work / name
    shutil.copytree(REPO / "examples" / "hello-go", plugin)
    shutil.rmtree(plugin / "backend" / "bin", ignore_errors=True)
    source = plugin / "backend" / "cmd" / "plugin" / "main.go"

    def edit(marker: str) -> None:
        set_constant(source, "const greeting =", f'const greeting = "{marker}"')

    def breaker() -> None:
        set_constant(source, "const greeting =", "const greeting = (")

    return plugin, edit, breaker


def bench_powerx_go(
    edits: int, gap_s: float, timeout_s: float, work: Path, broken_every: int = 0
) -> Result:
    plugin, edit, breaker = go_example(work, "hello-go")
    result = Result("powerx (go)")
    with (
        LocalSimulator([plugin], watch=True, workdir=work / "sim-go") as sim,
        httpx.Client(trust_env=False, timeout=10) as client,
    ):
        url = f"{sim.url}/_p/{GO_ID}/api/v1/hello"
        wait_up(url, client)
        measure(result, url, edit, edits, gap_s, timeout_s, client, breaker, broken_every)
        found = [tuple(map(float, m)) for m in PHASES.findall(sim.output())]
        if found:
            for index, phase in enumerate(("build", "upload", "start", "swap")):
                result.phases[phase] = statistics.median(f[index] for f in found)
    return result


def bench_go_restart(edits: int, gap_s: float, timeout_s: float, work: Path) -> Result:
    """`go build && restart` on each save: watchfiles stops the server (SIGINT, which the
    example shuts down on), then runs the build and the new binary."""
    plugin, edit, _ = go_example(work, "go-restart")
    backend = plugin / "backend"
    port = free_port()
    signer = ContextSigner({"dev": Identity()}, "dev", ContextSigning())
    go = shutil.which("go") or "go"
    env = {
        "PATH": f"{Path(go).parent}:/usr/bin:/bin",
        "HOME": str(work),
        "GOCACHE": str(work / "go-restart-cache"),
        "GOPROXY": "off",
        "PORT": str(port),
        "POWERX_PLUGIN_ID": GO_ID,
        **signer.plugin_environment(GO_ID),
    }
    subprocess.run(["go", "build", "-o", "bin/plugin", "./cmd/plugin"], cwd=backend, env=env)
    watcher = Path(sys.executable).parent / "watchfiles"
    command = [
        str(watcher),
        "--filter",
        "all",
        "--ignore-paths",
        str(backend / "bin"),
        "sh -c 'go build -o bin/plugin ./cmd/plugin && exec bin/plugin'",
        str(backend / "cmd"),
        str(backend / "internal"),
    ]

    def sign(request: httpx.Request) -> None:  # fresh each time: the context ages out
        request.headers.update(dict(signer.headers(signer.identities["dev"], GO_ID)))

    result = Result("go build && restart")
    with (
        running(command, backend, env),
        httpx.Client(trust_env=False, timeout=10, event_hooks={"request": [sign]}) as client,
    ):
        url = f"http://127.0.0.1:{port}/api/v1/hello"
        wait_up(url, client)
        time.sleep(0.5)
        measure(result, url, edit, edits, gap_s, timeout_s, client)
    return result


@dataclass(frozen=True)
class BackendExample:
    """A backend example, the line that holds its greeting, and how to rewrite it."""

    folder: str
    plugin_id: str
    source: str
    prefix: str
    line: str


BACKENDS = {
    "python": BackendExample(
        "hello-backend-python",
        "com.example.hello-backend-python",
        "server.py",
        "GREETING =",
        'GREETING = "{}"',
    ),
    "node": BackendExample(
        "hello-backend-node",
        "com.example.hello-backend-node",
        "server.js",
        "const GREETING =",
        'const GREETING = "{}";',
    ),
}


def bench_powerx_backend(
    language: str, edits: int, gap_s: float, timeout_s: float, work: Path
) -> Result:
    example = BACKENDS[language]
    plugin = work / f"powerx-{example.folder}"
    shutil.copytree(REPO / "examples" / example.folder, plugin, symlinks=True)
    source = plugin / example.source

    def edit(marker: str) -> None:
        set_constant(source, example.prefix, example.line.format(marker))

    result = Result(f"powerx backend ({language})")
    with (
        LocalSimulator([plugin], watch=True, workdir=work / f"sim-backend-{language}") as sim,
        httpx.Client(trust_env=False, timeout=10) as client,
    ):
        url = f"{sim.url}/_p/{example.plugin_id}/api/v1/hello"
        wait_up(url, client)
        measure(result, url, edit, edits, gap_s, timeout_s, client)
    return result


def heavy_backend_app(folder: Path) -> Path:
    """The heavy FastAPI app as a backend plugin: uvicorn is one of its requirements."""
    folder.mkdir()
    # PowerX routes /_p/<id>/api/v1/* to the program with the path as it is.
    routes = '@app.get("/", response_model=Greeting)\n'
    (folder / "app.py").write_text(
        HEAVY_APP.replace(routes, routes + '@app.get("/api/v1/", response_model=Greeting)\n')
    )
    (folder / "requirements.txt").write_text(HEAVY_REQUIREMENTS + "uvicorn\n")
    (folder / "plugin.yaml").write_text(HEAVY_BACKEND_MANIFEST)
    return folder


def bench_powerx_heavy_backend(edits: int, gap_s: float, timeout_s: float, work: Path) -> Result:
    plugin = heavy_backend_app(work / "powerx-heavy-backend")
    source = plugin / "app.py"
    result = Result("powerx backend (heavy)")
    with (
        LocalSimulator([plugin], watch=True, workdir=work / "sim-heavy-backend") as sim,
        httpx.Client(trust_env=False, timeout=10) as client,
    ):
        url = f"{sim.url}/_p/{HEAVY_BACKEND_ID}/api/v1/"
        wait_up(url, client, timeout_s=300)  # its first start installs from uv's cache
        measure(
            result,
            url,
            lambda m: set_constant(source, "GREETING =", f'GREETING = "{m}"'),
            edits,
            gap_s,
            timeout_s,
            client,
        )
    return result


def bench_uvicorn_heavy_backend(edits: int, gap_s: float, timeout_s: float, work: Path) -> Result:
    """The heavy backend's files under `uvicorn --reload`, in a virtualenv of the same
    packages."""
    folder = heavy_backend_app(work / "uvicorn-heavy-backend")
    python = heavy_virtualenv(work / "uvicorn-heavy-backend-venv")
    port = free_port()
    command = [str(python), "-m", "uvicorn", "app:app", "--reload", "--port", str(port)]
    return bench_restarting_tool(
        "uvicorn --reload (heavy backend)",
        [*command, "--log-level", "warning"],
        folder,
        {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
        port,
        lambda m: set_constant(folder / "app.py", "GREETING =", f'GREETING = "{m}"'),
        edits,
        gap_s,
        timeout_s,
    )


def bench_backend_restarting(
    language: str, edits: int, gap_s: float, timeout_s: float, work: Path
) -> Result:
    """The same backend server file under `uvicorn --reload` (Python) or `nodemon` (Node)."""
    example = BACKENDS[language]
    folder = work / f"restarting-{example.folder}"
    shutil.copytree(REPO / "examples" / example.folder, folder, symlinks=True)
    source = folder / example.source
    port = free_port()
    if language == "python":
        tool = "uvicorn --reload (backend server)"
        command = [sys.executable, "-m", "uvicorn", "server:app", "--reload"]
        command += ["--port", str(port), "--log-level", "warning"]
        env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    else:
        if not NODEMON.exists():
            raise SystemExit("nodemon missing: run `make bench` (or `npm ci` in benchmarks/)")
        tool = "nodemon (backend server)"
        command = [str(NODEMON), "--quiet", "server.js"]
        node_dir = Path(shutil.which("node") or "node").parent
        env = {"PATH": f"{node_dir}:/usr/bin:/bin", "PORT": str(port)}
    result = Result(tool)
    with running(command, folder, env), httpx.Client(trust_env=False, timeout=10) as client:
        url = f"http://127.0.0.1:{port}/api/v1/hello"
        wait_up(url, client)
        measure(
            result,
            url,
            lambda m: set_constant(source, example.prefix, example.line.format(m)),
            edits,
            gap_s,
            timeout_s,
            client,
        )
    return result


@contextmanager
def running(
    command: list[str], cwd: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def bench_restarting_tool(
    tool: str,
    command: list[str],
    folder: Path,
    env: dict[str, str],
    port: int,
    edit: Callable[[str], None],
    edits: int,
    gap_s: float,
    timeout_s: float,
) -> Result:
    """A tool that restarts the whole process on each save (uvicorn --reload, nodemon)."""
    result = Result(tool)
    with running(command, folder, env), httpx.Client(trust_env=False, timeout=10) as client:
        url = f"http://127.0.0.1:{port}/"
        wait_up(url, client)
        time.sleep(0.5)
        measure(result, url, edit, edits, gap_s, timeout_s, client)
    return result


def heavy_virtualenv(venv: Path) -> Path:
    """A virtualenv with the heavy app's packages and uvicorn (compiled, as powerx's are:
    a restart then reads bytecode, not source), built by the uv that comes with powerx;
    outside the app's folder, which uvicorn watches."""
    uv = find_uv()
    python = venv / "bin" / "python"
    subprocess.run([uv, "venv", "-q", str(venv), "--python", sys.executable], check=True)
    install = [uv, "pip", "install", "-q", "--compile-bytecode", "--python", str(python)]
    subprocess.run([*install, *HEAVY_REQUIREMENTS.split(), "uvicorn"], check=True)
    return python


def bench_uvicorn(
    edits: int, gap_s: float, timeout_s: float, work: Path, heavy: bool = False
) -> Result:
    folder = work / ("uvicorn-heavy-app" if heavy else "uvicorn-app")
    if heavy:
        heavy_app(folder)
    else:
        folder.mkdir()
        (folder / "app.py").write_text(UVICORN_APP)
    source = folder / "app.py"
    python = heavy_virtualenv(work / "uvicorn-heavy-venv") if heavy else Path(sys.executable)
    port = free_port()
    command = [
        str(python),
        "-m",
        "uvicorn",
        "app:app",
        "--reload",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    return bench_restarting_tool(
        "uvicorn --reload (heavy)" if heavy else "uvicorn --reload",
        command,
        folder,
        # Without it, a second save of the same size within one second was served from the
        # stale app.pyc (Python checks a .pyc by whole-second mtime and size): 36 % of edits
        # never showed up. powerx runs plugins with it set too.
        {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
        port,
        lambda m: set_constant(source, "GREETING =", f'GREETING = "{m}"'),
        edits,
        gap_s,
        timeout_s,
    )


def bench_nodemon(
    edits: int, gap_s: float, timeout_s: float, work: Path, app: str = "js"
) -> Result:
    """``app``: "js" (plain JavaScript), "ts" (TypeScript + esbuild), "host" (TypeScript +
    esbuild, one call to a stand-in host API per request) or "heavy" (plain JavaScript
    importing the heavy Node packages)."""
    missing = [tool.name for tool in (NODEMON, ESBUILD) if not tool.exists()]
    if missing:
        raise SystemExit(
            f"{' and '.join(missing)} missing: run `make bench` (or `npm ci` in benchmarks/)"
        )
    folder = work / f"nodemon-{app}-app"
    folder.mkdir()
    port = free_port()
    node_dir = Path(shutil.which("node") or "node").parent
    env = {"PATH": f"{node_dir}:/usr/bin:/bin", "PORT": str(port)}
    if app == "js":
        source = folder / "server.js"
        source.write_text(NODE_APP)
        command = [str(NODEMON), "--quiet", "server.js"]
        tool, line = "nodemon", 'const GREETING = "{}";'
    elif app == "heavy":
        heavy_node_versions()  # installed in benchmarks/node_modules, where it resolves them
        source = folder / "server.js"
        source.write_text(HEAVY_NODE_SERVER)
        (folder / "node_modules").symlink_to(REPO / "benchmarks" / "node_modules")
        command = [str(NODEMON), "--quiet", "server.js"]
        tool, line = "nodemon (heavy)", 'const GREETING = "{}";'
    else:
        source = folder / "src" / "server.ts"
        source.parent.mkdir()
        source.write_text(NODE_TS_HOST_APP if app == "host" else NODE_TS_APP)
        build = (
            f"{ESBUILD} src/server.ts --bundle --platform=node --target=node18 "
            "--outfile=dist/server.js --log-level=warning"
        )
        command = [
            str(NODEMON),
            "--quiet",
            "--watch",
            "src",
            "--ext",
            "ts",
            "--exec",
            f"{build} && node dist/server.js",
        ]
        tool = "nodemon + esbuild (TypeScript" + (", host API call)" if app == "host" else ")")
        line = 'const GREETING: string = "{}";'
    with contextlib.ExitStack() as stack:
        if app == "host":
            api_port = free_port()
            (folder / "host_api.js").write_text(HOST_API_STANDIN)
            api_env = {**env, "PORT": str(api_port)}
            stack.enter_context(running([str(node_dir / "node"), "host_api.js"], folder, api_env))
            env["HOST_API"] = f"http://127.0.0.1:{api_port}"
            with httpx.Client(trust_env=False, timeout=10) as client:
                wait_up(f"{env['HOST_API']}/contacts", client)
        return bench_restarting_tool(
            tool,
            command,
            folder,
            env,
            port,
            lambda m: set_constant(source, "const GREETING", line.format(m)),
            edits,
            gap_s,
            timeout_s,
        )


def table(results: list[Result]) -> str:
    rows = [
        "| tool | edits | p50 ms | p95 ms | p99 ms | success % | failed requests | "
        "broken edits kept serving | phases (median ms) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        phases = ", ".join(f"{k} {v:.0f}" for k, v in r.phases.items()) or "-"
        broken = f"{r.broken_kept_serving} of {r.broken_edits}" if r.broken_edits else "-"
        rows.append(
            f"| {r.tool} | {r.edits} | {r.percentile(50):.0f} | {r.percentile(95):.0f} "
            f"| {r.percentile(99):.0f} | {r.success:.2f} | {r.failed_requests} of "
            f"{r.requests} | {broken} | {phases} |"
        )
    by_tool = {r.tool: r for r in results}
    ratios = []
    for ours, theirs in (
        ("powerx (python)", "uvicorn --reload"),
        ("powerx (heavy)", "uvicorn --reload (heavy)"),
        ("powerx backend (heavy)", "uvicorn --reload (heavy backend)"),
        ("powerx (heavy node)", "nodemon (heavy)"),
        ("powerx (node)", "nodemon"),
        ("powerx (node)", "nodemon + esbuild (TypeScript)"),
        ("powerx (node)", "nodemon + esbuild (TypeScript, host API call)"),
        ("powerx (go)", "go build && restart"),
        ("powerx backend (python)", "uvicorn --reload (backend server)"),
        ("powerx backend (node)", "nodemon (backend server)"),
    ):
        if ours in by_tool and theirs in by_tool:
            ratio = by_tool[theirs].percentile(50) / by_tool[ours].percentile(50)
            verdict = f"{ratio:.1f}x faster than" if ratio >= 1 else f"{1 / ratio:.1f}x slower than"
            ratios.append(
                f"{ours} p50 is {verdict} {theirs} "
                f"({by_tool[ours].failed_requests} vs {by_tool[theirs].failed_requests} "
                "failed requests)"
            )
    return "\n".join([*rows, "", *ratios])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edits", type=int, default=200, help="edits per tool (default 200)")
    parser.add_argument("--gap-ms", type=float, default=100, help="pause after each served edit")
    parser.add_argument("--timeout-s", type=float, default=10, help="give up on an edit after")
    parser.add_argument(
        "--only",
        action="append",
        choices=TOOLS,
        help=f"run only these (repeatable); default: all {len(TOOLS)}",
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument(
        "--broken-every",
        type=int,
        default=0,
        metavar="K",
        help="powerx only: every K-th edit first saves a syntax error and checks "
        "that the serving generation keeps serving",
    )
    args = parser.parse_args()
    chosen = args.only or list(TOOLS)
    gap_s = args.gap_ms / 1000
    results = []
    with tempfile.TemporaryDirectory(prefix="powerx-bench-") as tmp:
        work = Path(tmp)
        runners: dict[str, Callable[[], Result]] = {
            "powerx-python": lambda: bench_powerx(
                "python", args.edits, gap_s, args.timeout_s, work, args.broken_every
            ),
            "powerx-node": lambda: bench_powerx(
                "node", args.edits, gap_s, args.timeout_s, work, args.broken_every
            ),
            "uvicorn": lambda: bench_uvicorn(args.edits, gap_s, args.timeout_s, work),
            "powerx-heavy": lambda: bench_powerx(
                "heavy", args.edits, gap_s, args.timeout_s, work, args.broken_every
            ),
            "uvicorn-heavy": lambda: bench_uvicorn(
                args.edits, gap_s, args.timeout_s, work, heavy=True
            ),
            "nodemon": lambda: bench_nodemon(args.edits, gap_s, args.timeout_s, work),
            "nodemon-ts": lambda: bench_nodemon(args.edits, gap_s, args.timeout_s, work, "ts"),
            "nodemon-host": lambda: bench_nodemon(args.edits, gap_s, args.timeout_s, work, "host"),
            "powerx-heavy-node": lambda: bench_powerx(
                "heavy node", args.edits, gap_s, args.timeout_s, work, args.broken_every
            ),
            "nodemon-heavy": lambda: bench_nodemon(
                args.edits, gap_s, args.timeout_s, work, "heavy"
            ),
            "powerx-heavy-backend": lambda: bench_powerx_heavy_backend(
                args.edits, gap_s, args.timeout_s, work
            ),
            "uvicorn-heavy-backend": lambda: bench_uvicorn_heavy_backend(
                args.edits, gap_s, args.timeout_s, work
            ),
            "powerx-go": lambda: bench_powerx_go(
                args.edits, gap_s, args.timeout_s, work, args.broken_every
            ),
            "go-restart": lambda: bench_go_restart(args.edits, gap_s, args.timeout_s, work),
            "powerx-backend-python": lambda: bench_powerx_backend(
                "python", args.edits, gap_s, args.timeout_s, work
            ),
            "uvicorn-backend": lambda: bench_backend_restarting(
                "python", args.edits, gap_s, args.timeout_s, work
            ),
            "powerx-backend-node": lambda: bench_powerx_backend(
                "node", args.edits, gap_s, args.timeout_s, work
            ),
            "nodemon-backend": lambda: bench_backend_restarting(
                "node", args.edits, gap_s, args.timeout_s, work
            ),
        }
        for name in chosen:
            results.append(runners[name]())
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=2))
    ours = [r for r in results if r.tool.startswith("powerx")]
    kept = all(r.broken_kept_serving == r.broken_edits for r in ours)
    return 0 if kept and all(r.success >= 99.9 for r in ours) else 1


if __name__ == "__main__":
    sys.exit(main())
