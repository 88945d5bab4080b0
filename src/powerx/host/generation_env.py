"""What a generation's process is started with: its environment (the simulator's contract
with the plugin, the egress policy and proxy, the guards its own child processes load,
the debugger switch) and, for a handler plugin, the shim's arguments."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import httpx

from powerx.host.egress_proxy import EgressProxy
from powerx.host.python_runtime import PythonRuntime
from powerx.manifest import Manifest
from powerx.runtimes import DEBUG_PROGRAM_ENV, NODE_EGRESS_PRELOAD, PYTHON_CHILD_PATH
from powerx.runtimes.egress_guard import POLICY_ENV as EGRESS_POLICY_ENV


def generation_environment(
    base: dict[str, str],
    manifest: Manifest,
    token: str,
    python: PythonRuntime | None,
    *,
    host_url: str,
    tenant: str,
    production_hosts: tuple[str, ...],
    egress_proxy: EgressProxy | None,
    extra: Mapping[str, str],
    debugged: bool,
) -> dict[str, str]:
    """``base`` (the plugin's process environment) completed for one generation, which
    authenticates with ``token``; ``extra``: the context signing and gRPC settings;
    ``debugged``: the debugger wants this generation."""
    env = dict(base)
    if python is not None:  # a backend program needs only its PATH
        path = env.get("PATH", "")
        env.update(python.path_env(path) if manifest.is_backend else python.plugin_env(path))
    env.update(
        {
            "POWERX_HOST_URL": host_url,
            "POWERX_PLUGIN_TOKEN": token,
            "POWERX_PLUGIN_ID": manifest.id,
            "POWERX_PLUGIN_VERSION": manifest.version,
            "POWERX_TENANT": tenant,
            EGRESS_POLICY_ENV: json.dumps(
                {
                    "allow": list(manifest.egress),
                    "deny": list(production_hosts),
                    "simulator": httpx.URL(host_url).netloc.decode(),
                    "proxy": f"127.0.0.1:{egress_proxy.port}" if egress_proxy else "",
                }
            ),
        }
    )
    env.update(extra)
    if egress_proxy is not None:
        # Tools the plugin starts (curl, pip ...) go through the proxy, which applies the
        # same policy; the simulator itself is reached directly.
        proxy_url = egress_proxy.url_for(manifest.id, token)
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            env[name] = proxy_url
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    if not manifest.runtime.startswith("python"):  # a backend program may be either
        # Node ignores HTTP(S)_PROXY, so a `node` the plugin starts loads the guard too.
        env["NODE_OPTIONS"] = f"--require {json.dumps(str(NODE_EGRESS_PRELOAD))}"
    if not manifest.runtime.startswith("node"):
        # And a `python` it starts runs python_child/sitecustomize.py, which does the same.
        env["PYTHONPATH"] = str(PYTHON_CHILD_PATH)
    if debugged:
        # A program's Python loads the debugger in sitecustomize, under its own name so
        # that the shim (whose start-up runs sitecustomize too) does not load it twice.
        env[DEBUG_PROGRAM_ENV if manifest.is_backend else "POWERX_DEBUGGER"] = "1"
    return env


def shim_argv(manifest: Manifest, run_dir: Path, source_dir: Path) -> list[str]:
    """The arguments of the runtime's shim that serves a handler plugin's artefact."""
    info = json.loads((run_dir / "artefact.json").read_text(encoding="utf-8"))
    runnable = str(info["runnable"])
    if manifest.runtime == "python3.11":
        entry_file = str(Path(runnable).relative_to("src"))
        return [str(run_dir / "src"), entry_file, str(info["entry_attribute"])]
    return [str(run_dir), runnable, str(source_dir)]
