"""`powerx logs`: a plugin's log records (masked by the simulator), live with --follow."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.markup import escape

from powerx.cli.render import console, err_console
from powerx.client import sync as client
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.observe.logs import LEVELS, level_rank
from powerx.observe.observer import TELEMETRY_DB
from powerx.observe.telemetry import TelemetryStore
from powerx.paths import state_dir
from powerx.running import find_host_info

_LEVEL_STYLE = {
    "debug": "dim",
    "info": "cyan",
    "warning": "yellow",
    "error": "red",
    "critical": "bold red",
}


def format_record(record: dict[str, Any]) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(float(record.get("ts", 0))))
    level = str(record.get("level", "info"))
    style = _LEVEL_STYLE.get(level, "")
    line = (
        f"[dim]{stamp}[/] {escape(str(record.get('plugin')))}[dim]#{record.get('generation')}[/] "
        f"[{style}]{level:<7}[/] {escape(str(record.get('message', '')))}"
    )
    if record.get("latency_ms") is not None:
        line += f" [dim]{record['latency_ms']:.1f} ms[/]"
    if record.get("reason"):
        line += f" [red]({escape(str(record['reason']))})[/]"
    fields = record.get("fields")
    if isinstance(fields, dict) and fields:
        line += " [dim]" + escape(json.dumps(fields, separators=(",", ":"))) + "[/]"
    return line


def logs(
    plugin: Annotated[
        str | None, typer.Argument(help="Plugin id (all plugins when left out).")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep streaming new records.")
    ] = False,
    level: Annotated[
        str | None,
        typer.Option("--level", "-l", help=f"Lowest level shown: {', '.join(LEVELS)}."),
    ] = None,
    tail: Annotated[int, typer.Option("--tail", "-n", help="Records shown from the past.")] = 100,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON record per line (for jq and scripts).")
    ] = False,
) -> None:
    """Show plugin logs: stdout, stderr, request lines with latency, reload failures.

    Secrets (passwords, tokens, API keys, JWTs, URL passwords, e-mail local parts) are
    masked by the simulator before anything is kept or sent.

    Examples:

      powerx logs com.example.hello-python --follow

      powerx logs --level warning --tail 20

      powerx logs com.example.hello-node -f --json | jq .message
    """
    if level is not None and level not in LEVELS:
        raise PowerXError(
            ErrorCode.INVALID_LEVEL,
            f"Unknown log level {level!r}.",
            f"use one of: {', '.join(LEVELS)}.",
        )
    params = {"tail": str(tail), "follow": "1" if follow else "0"}
    if plugin:
        params["plugin"] = plugin
    if level:
        params["level"] = level

    def show(record: dict[str, Any]) -> None:
        if as_json:
            print(json.dumps(record), flush=True)
        else:
            console.print(format_record(record))

    if find_host_info() is None and not follow:
        # No simulator: the records it stored are still there (already masked).
        err_console.print("[dim]no simulator running; showing stored records[/]")
        store = TelemetryStore(state_dir() / TELEMETRY_DB, readonly=True)
        try:
            stored = store.logs(plugin, limit=max(tail, 0) * 20 if level else max(tail, 0))
        finally:
            store.close()
        wanted = [r for r in stored if level is None or level_rank(r["level"]) >= level_rank(level)]
        for record in wanted[-tail:] if tail else []:
            show(record)
        return
    for event in client.stream("/internal/debug/logs", params):
        if event.event == "log":
            show(json.loads(event.data))
