"""Production blocking: a plugin process cannot reach production PowerX, or any host
outside its manifest's egress list, by any route its runtime offers; each attempt is
refused with a message naming the host and the fix, and is counted, logged and audited."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from powerx.bundling.toolchain import node_executable
from powerx.runtimes import NODE_EGRESS_PRELOAD
from powerx.testing import wait_until
from tests.conftest import HELLO_NODE, RunningSimulator, Workspace, python_manifest, write_plugin
from tests.integration.test_hot_reload import push

PY_LEAK = """
import os
import socket
import subprocess
import sys
import urllib.request

import httpx
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


# A `python` the plugin starts; the host is in its environment, not in its arguments.
CHILD_CONNECT = (
    "import os, socket, sys\\n"
    "try:\\n"
    "    socket.create_connection((os.environ['LEAK_TARGET'], 443), timeout=2)\\n"
    "except OSError as exc:\\n"
    "    sys.exit(str(exc))\\n"
)


def in_child_python(target):
    done = subprocess.run(
        [sys.executable, "-c", CHILD_CONNECT],
        env={**os.environ, "LEAK_TARGET": target},
        stderr=subprocess.PIPE,  # stdout stays the plugin's: its control lines reach the host
        text=True,
    )
    if done.returncode:
        raise OSError(done.stderr.strip())


def attempt(fn):
    try:
        fn()
        return "reached"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


async def home(request):
    probe = request.query_params.get("probe")
    if probe:
        return JSONResponse({"probe": attempt(lambda: httpx.get(probe).raise_for_status())})
    target = request.query_params.get("host", "api.powerx.io")
    url = f"https://{target}/v1"
    results = {
        "socket": attempt(lambda: socket.create_connection((target, 443), timeout=2)),
        "getaddrinfo": attempt(lambda: socket.getaddrinfo(target, 443)),
        "urllib": attempt(lambda: urllib.request.urlopen(url, timeout=2)),
        "httpx": attempt(lambda: httpx.get(url, timeout=2)),
        "curl": attempt(lambda: subprocess.run(["curl", "-s", "-m", "2", url], check=True)),
        "child_python": attempt(lambda: in_child_python(target)),
    }
    async with httpx.AsyncClient() as client:
        try:
            await client.get(url, timeout=2)
            results["httpx_async"] = "reached"
        except Exception as exc:
            results["httpx_async"] = f"{type(exc).__name__}: {exc}"
    return JSONResponse(results)


app = Starlette(routes=[Route("/", home)])
"""

NODE_LEAK = """
import * as net from "node:net";
import * as http from "node:http";
import * as https from "node:https";
import { execFileSync, execSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker, WorkerOptions } from "node:worker_threads";

// The same fetch from a worker thread: as inline code, a CommonJS file and an ES module.
const WORKER_FETCH = `fetch("https://" + workerData + "/v1").then(
  () => parentPort.postMessage("reached"),
  (e) => parentPort.postMessage((e.code ?? e.name) + ": " + (e.cause?.message ?? e.message)),
);`;
const WORKER_CJS = `const { parentPort, workerData } = require("node:worker_threads");
${WORKER_FETCH}`;
const WORKER_ESM = `import { parentPort, workerData } from "node:worker_threads";
${WORKER_FETCH}`;

function inWorker(
  code: string | URL,
  target: string,
  options: WorkerOptions = {},
): Promise<string> {
  return new Promise((resolve) => {
    const worker = new Worker(code, { ...options, workerData: target });
    worker.once("message", (message) => {
      resolve(String(message));
      void worker.terminate();
    });
    worker.once("error", (e: any) => resolve(`${e.code ?? e.name}: ${e.message}`));
  });
}

function workerFile(name: string, code: string): string {
  const file = join(mkdtempSync(join(tmpdir(), "leak-worker-")), name);
  writeFileSync(file, code);
  return file;
}

// A `node` the plugin starts; the host is in its environment, not in its arguments.
const CHILD_FETCH = `fetch("https://" + process.env.LEAK_TARGET + "/v1").then(
  () => process.exit(0),
  (e) => { process.stderr.write(e.cause?.message ?? e.message); process.exit(1); },
);`;

function inChildNode(target: string): void {
  execFileSync(process.execPath, ["-e", CHILD_FETCH], {
    env: { ...process.env, LEAK_TARGET: target },
    stdio: ["ignore", "inherit", "pipe"], // its control lines reach the simulator
  });
}

async function attempt(fn: () => unknown): Promise<string> {
  try {
    await fn();
    return "reached";
  } catch (e: any) {
    return `${e.code ?? e.name}: ${e.cause?.message ?? e.message}`;
  }
}

function get(module: typeof http, url: string): Promise<unknown> {
  return new Promise((resolve, reject) => module.get(url, resolve).on("error", reject));
}

export default {
  async fetch(request: Request): Promise<Response> {
    const query = new URL(request.url).searchParams;
    const probe = query.get("probe");
    if (probe) {
      return Response.json({
        probe: await attempt(async () => {
          const response = await fetch(probe);
          if (!response.ok) throw new Error(String(response.status));
        }),
      });
    }
    const target = query.get("host") ?? "api.powerx.io";
    const connect = () =>
      new Promise((resolve, reject) => net.connect(443, target, resolve).on("error", reject));
    const results: Record<string, string> = {
      fetch: await attempt(() => fetch(`https://${target}/v1`)),
      net: await attempt(connect),
      http: await attempt(() => get(http, `http://${target}/v1`)),
      https: await attempt(() => get(https as unknown as typeof http, `https://${target}/v1`)),
      curl: await attempt(() => execSync(`curl -s -m 2 https://${target}/v1`)),
      worker: await inWorker(WORKER_CJS, target, { eval: true }),
      worker_file: await inWorker(workerFile("leak.js", WORKER_CJS), target),
      worker_esm: await inWorker(pathToFileURL(workerFile("leak.mjs", WORKER_ESM)), target),
      child_node: await attempt(() => inChildNode(target)),
    };
    return Response.json(results);
  },
};
"""

ROUTES_PY = {"socket", "getaddrinfo", "urllib", "httpx", "curl", "httpx_async", "child_python"}
ROUTES_NODE = {
    *("fetch", "net", "http", "https", "curl"),
    *("worker", "worker_file", "worker_esm", "child_node"),
}


@pytest.fixture(autouse=True)
def logged_in(workspace: Workspace) -> None:
    workspace.login()


def node_plugin(tmp_path: Path, egress: str = "[]") -> Path:
    plugin = tmp_path / "leak-node"
    shutil.copytree(HELLO_NODE, plugin, symlinks=True)
    (plugin / "src" / "index.ts").write_text(NODE_LEAK)
    manifest = plugin / "plugin.yaml"
    text = manifest.read_text().replace("com.example.hello-node", "com.test.leak-node")
    manifest.write_text(text.replace("egress: []", f"egress: {egress}"))
    return plugin


def python_plugin(tmp_path: Path, egress: str = "[]") -> Path:
    manifest = python_manifest("com.test.leak-python") + f"egress: {egress}\n"
    return write_plugin(tmp_path / "leak-python", manifest, {"app.py": PY_LEAK})


def audit_rows(workspace: Workspace, plugin: str) -> list[dict[str, Any]]:
    import json

    result = workspace.powerx(
        "audit",
        "list",
        "--plugin",
        plugin,
        "--action",
        "egress.blocked",
        "--json",
        "--limit",
        "1000",
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]  # one row per line


@pytest.mark.parametrize("runtime", ["python", "node"])
def test_every_route_to_production_is_blocked_counted_and_audited(
    workspace: Workspace, start_simulator: Any, tmp_path: Path, runtime: str
) -> None:
    plugin = python_plugin(tmp_path) if runtime == "python" else node_plugin(tmp_path)
    plugin_id = f"com.test.leak-{runtime}"
    routes = ROUTES_PY if runtime == "python" else ROUTES_NODE
    simulator: RunningSimulator = start_simulator([plugin])
    results = simulator.get(f"/plugins/{plugin_id}/?host=api.powerx.io").json()
    assert set(results) == routes
    for route, outcome in results.items():
        assert "egress to api.powerx.io" in outcome and "blocked" in outcome, (route, outcome)
        assert "production PowerX API" in outcome and "POWERX_HOST_URL" in outcome
    # A subdomain matches the *.powerx.io default pattern too.
    sub = simulator.get(f"/plugins/{plugin_id}/?host=eu.api.powerx.io").json()
    assert all("blocked" in outcome for outcome in sub.values()), sub

    metrics = simulator.get("/metrics", headers=simulator.debug_headers()).text
    line = next(
        ln
        for ln in metrics.splitlines()
        if ln.startswith("debug_egress_blocked_total")
        and plugin_id in ln
        and "production_host" in ln
    )
    assert float(line.rsplit(" ", 1)[1]) >= 2 * len(routes)
    assert wait_until(lambda: len(audit_rows(workspace, plugin_id)) >= 2 * len(routes), 10)
    rows = audit_rows(workspace, plugin_id)
    assert len(rows) >= 2 * len(routes)
    assert {r["details"]["host"] for r in rows} == {"api.powerx.io", "eu.api.powerx.io"}
    assert {r["details"]["reason"] for r in rows} == {"production_host"}
    assert workspace.powerx("audit", "verify").returncode == 0


@pytest.mark.parametrize("runtime", ["python", "node"])
def test_hosts_outside_egress_are_blocked_and_listed_ones_reached(
    workspace: Workspace, start_simulator: Any, tmp_path: Path, runtime: str
) -> None:
    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_port
    try:
        egress = f"['localhost:{port}']"  # a loopback host opens only the port it names
        plugin = (
            python_plugin(tmp_path, egress)
            if runtime == "python"
            else node_plugin(tmp_path, egress)
        )
        plugin_id = f"com.test.leak-{runtime}"
        simulator: RunningSimulator = start_simulator([plugin])
        outside = simulator.get(f"/plugins/{plugin_id}/?host=example.org").json()
        for route, outcome in outside.items():
            if route == "curl":
                # Outside the guard: the egress proxy the process is pointed at refuses it.
                assert outcome != "reached", outcome
                continue
            assert "egress to example.org" in outcome, (route, outcome)
            assert "not in the manifest's egress list" in outcome
        listed = workspace.powerx("audit", "list", "--json", "-n", "500").stdout
        audit = [json.loads(line) for line in listed.splitlines()]
        by_proxy = [
            row
            for row in audit
            if row["action"] == "egress.blocked" and row["details"].get("route") == "proxy"
        ]
        assert by_proxy and by_proxy[0]["details"]["host"] == "example.org", audit
        listed = simulator.get(f"/plugins/{plugin_id}/?probe=http://localhost:{port}/").json()
        assert listed["probe"] == "reached", listed
    finally:
        server.shutdown()


def test_a_manifest_listing_a_production_host_in_egress_is_refused(
    workspace: Workspace, start_simulator: Any, tmp_path: Path
) -> None:
    plugin = python_plugin(tmp_path)
    simulator: RunningSimulator = start_simulator([plugin])
    manifest = plugin / "powerx.plugin.yaml"
    manifest.write_text(manifest.read_text().replace("egress: []", "egress: [api.powerx.io]"))
    response = push(simulator, plugin)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "egress_production"
    assert "api.powerx.io" in body["message"] and body["fix"]


WIDEN_ATTEMPT = """
const guard = require(process.argv[1]);
guard.installHooks(); // as a warm spare does, before it has a plugin and a policy
guard.install({ allow: [], deny: ['*.powerx.io'], simulator: '127.0.0.1:1' });
guard.install({ allow: ['api.powerx.io'], deny: [], simulator: '127.0.0.1:1' }); // later code
const socket = require('node:net').connect(443, 'api.powerx.io');
socket.on('connect', () => { console.log('RESULT reached'); process.exit(0); });
socket.on('error', (error) => { console.log(`RESULT ${error.code}`); process.exit(0); });
"""


def test_a_node_plugins_egress_policy_is_set_once() -> None:
    """The guard's hooks go in before the policy is known (a warm spare hooks them in
    early); the policy is then set once, so code that runs later cannot widen it."""
    guard = NODE_EGRESS_PRELOAD.with_name("egress_guard.js")
    done = subprocess.run(
        [node_executable(), "-e", WIDEN_ATTEMPT, str(guard)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    results = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert results == ["RESULT POWERX_EGRESS_BLOCKED"], done.stdout + done.stderr
