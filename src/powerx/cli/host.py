"""`powerx host ...`: start, inspect and stop the local host simulator."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.table import Table

from powerx import auth
from powerx.cli.dev import DevConsole, format_outcome
from powerx.cli.foreground import read_host_info, run_foreground
from powerx.cli.foreground.console import ConsoleReporter
from powerx.cli.host_status import render_status
from powerx.cli.render import console, err_console, warn
from powerx.client import sync as client
from powerx.config import SIMULATOR_FLAG, load_config
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.preflight import plan_plugins
from powerx.host.rollback_targets import rollback_targets
from powerx.paths import state_dir
from powerx.reload.executor import ReloadOutcome

app = typer.Typer(help="Run the local host simulator.", no_args_is_help=True)

ConfigOption = Annotated[Path | None, typer.Option("--config", help="host_simulator.yaml to use.")]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _refuse_if_running() -> None:
    info = read_host_info()
    if info is None:
        return
    try:
        httpx.get(f"{info['url']}/healthz", timeout=1.0, trust_env=False)
    except httpx.HTTPError:
        return  # a stale file from a simulator that died; it is overwritten on start
    raise PowerXError(
        ErrorCode.HOST_ALREADY_RUNNING,
        f"A simulator is already running at {info['url']}.",
        "stop it with `powerx host stop`, or use it as it is.",
    )


@app.command()
def start(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Plugin folders (each holds plugin.yaml or powerx.plugin.yaml); none: mount "
            "them later with `powerx dev DIR`."
        ),
    ] = None,
    mock: Annotated[
        bool, typer.Option("--mock/--live", help="Mock the PowerX platform's host APIs.")
    ] = True,
    image: Annotated[
        str | None, typer.Option(help="Host image, e.g. 2.4.0 or powerx/host-simulator:3.0.0.")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="HTTP port (default 8787; 0 picks a free one).")
    ] = None,
    bind: Annotated[
        str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")
    ] = None,
    config_path: ConfigOption = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Also hot-reload the plugins on every save (like `powerx dev`, in this process).",
        ),
    ] = False,
    poll: Annotated[
        bool, typer.Option("--poll", help="With --watch: poll instead of native file events.")
    ] = False,
    identity: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="Identity (from identities in host_simulator.yaml) that requests to plugins "
            "are signed as.",
        ),
    ] = None,
) -> None:
    """Start the simulator in the foreground and mount the plugins.

    Every manifest is checked against the image first; nothing starts unless all pass.
    A plugin that does not build or start ends the start; with --watch the others serve
    and it is mounted on the first save that starts cleanly.

    Examples:

      powerx host start --mock examples/hello-python examples/hello-node

      powerx host start --mock ./my-plugin --watch        # and hot-reload on save

      powerx host start --mock                            # no plugin yet: `powerx dev DIR`

      powerx host start --mock ./my-plugin --image 3.0.0 --port 9000

      powerx host start --mock ./my-plugin --as viewer      # sign requests as "viewer"
    """
    if not mock:
        raise PowerXError(
            ErrorCode.LIVE_UNAVAILABLE,
            "Live mode (host APIs from the PowerX platform) is not available in this version.",
            "use --mock.",
        )
    overrides = {
        "POWERX_IMAGE": image,
        "POWERX_HTTP_PORT": None if port is None else str(port),
        "POWERX_BIND": bind,
        "POWERX_IDENTITY": identity,
    }
    env = dict(os.environ) | {k: v for k, v in overrides.items() if v is not None}
    config = load_config(config_path, env)
    if not config.flag(SIMULATOR_FLAG):
        raise PowerXError(
            ErrorCode.SIMULATOR_DISABLED,
            f"The host simulator is switched off (flag {SIMULATOR_FLAG}).",
            f"set {SIMULATOR_FLAG}=1 in the environment or flags.{SIMULATOR_FLAG}: true in "
            "host_simulator.yaml.",
        )
    if watch and not paths:
        raise PowerXError(
            ErrorCode.NOTHING_TO_WATCH,
            "--watch needs the plugin folders to watch.",
            "name them (`powerx host start --mock --watch ./my-plugin`), or start without "
            "--watch and run `powerx dev ./my-plugin` in another terminal.",
        )
    auth.require_credential()
    plans = plan_plugins(paths or [], config)
    for plan in plans:
        for text in plan.warnings:
            warn(text)
    _refuse_if_running()
    # Ctrl-C and SIGTERM both end the run cleanly (plugins are stopped on the way out).
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        run_foreground(
            config, plans, state_dir(), ConsoleReporter(), DevConsole() if watch else None, poll
        )
    err_console.print("[dim]simulator stopped[/]")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw status as JSON.")] = False,
) -> None:
    """Show the running simulator and its plugins (generation, artefact, pid, state, and
    the debug port an IDE attaches to: `powerx debug vscode PLUGIN`).

    Examples:

      powerx host status

      powerx host status --json | jq '.plugins[].state'
    """
    data = client.request("GET", "/internal/debug/status")
    with contextlib.suppress(PowerXError):  # observability may be switched off
        data["dashboard"] = client.request("GET", "/internal/debug/dashboard-link")["url"]
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        render_status(data)
        if data.get("dashboard"):
            console.print(f"dashboard: [bold]{data['dashboard']}[/]", soft_wrap=True)


@app.command()
def stop() -> None:
    """Stop the running simulator and its plugin processes.

    Examples:

      powerx host stop

      cd my-plugin && powerx host stop      # from a plugin folder: finds its simulator
    """
    url = client.stop()
    console.print(f"[green]✓[/] stopped the simulator at {url}")


@app.command()
def rollback(
    plugin: Annotated[str, typer.Argument(help="Plugin id, e.g. com.example.hello-python.")],
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Artefact digest (or a unique prefix) to serve instead of the previous one.",
        ),
    ] = None,
) -> None:
    """Serve the last good artefact again (or the one named with --to).

    The new generation starts beside the serving one and takes over only when healthy.
    `powerx host artefacts PLUGIN` lists the artefacts --to accepts.

    Examples:

      powerx host rollback com.example.hello-python

      powerx host artefacts com.example.hello-python     # pick one, then:

      powerx host rollback com.example.hello-python --to 3f2a9c01
    """
    body: dict[str, str] = {"plugin": plugin}
    if to:
        body["digest"] = to
    result = client.request("POST", "/internal/debug/rollback", json_body=body, timeout=60)
    outcome = ReloadOutcome(
        plugin,
        True,
        [],
        result["timings"].get("total_ms", 0.0),
        result["generation"],
        result["status"],
        result["timings"],
    )
    console.print(format_outcome(outcome))
    console.print(
        f"  now serving {result['digest'][:12]}"
        + (f" (was {result['previous_digest'][:12]})" if result["previous_digest"] else "")
    )


@app.command()
def artefacts(
    plugin: Annotated[str, typer.Argument(help="Plugin id, e.g. com.example.hello-python.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per artefact, one per line.")
    ] = False,
) -> None:
    """List the stored artefacts a plugin served, newest first: the ones
    `powerx host rollback PLUGIN --to DIGEST` accepts (a unique prefix is enough).

    Reads this project's .powerx folder; works with the simulator running or stopped.

    Examples:

      powerx host artefacts com.example.hello-python

      powerx host artefacts com.example.hello-python --json | jq -r .digest
    """
    targets = rollback_targets(state_dir(), plugin)
    if as_json:
        for target in targets:
            print(json.dumps(target.to_dict()), flush=True)
        return
    table = Table(show_edge=False, header_style="bold")
    for column in ("artefact", "served at", "gen", ""):
        table.add_column(column, no_wrap=column == "artefact", overflow="fold")
    for target in targets:
        when = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(target.served_at))
            if target.served_at is not None
            else "-"
        )
        role = (
            "[green]serving[/]"
            if target.serving
            else "previous (rollback without --to)"
            if target.previous
            else ""
        )
        generation = "-" if target.generation is None else str(target.generation)
        table.add_row(target.digest[:12], when, generation, role)
    console.print(table)


cache_app = typer.Typer(help="Build and artefact caches.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@cache_app.command("clear")
def cache_clear() -> None:
    """Empty the build and artefact caches; the active and previous artefacts stay, and
    the Python environments plugins run in (or would start in next).

    Example:

      powerx host cache clear
    """
    result = client.request("POST", "/internal/debug/cache/clear")
    build = state_dir() / "build"
    cleared_builds = 0
    if build.is_dir():
        cleared_builds = sum(1 for _ in build.iterdir())
        shutil.rmtree(build, ignore_errors=True)
    console.print(
        f"[green]✓[/] removed {result['removed']} artefact(s) and "
        f"{result.get('environments', 0)} unused Python environment(s), "
        f"{result['freed_bytes'] / 1024:.0f} KiB; kept {result['kept']} in use; "
        f"cleared {cleared_builds} build folder(s)"
    )
