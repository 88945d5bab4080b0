"""`powerx host status` rendered for a person: the host line, containment, gRPC, a table
of plugins (generation, artefact, pid, state, debug port) and what each failed reload
left behind."""

from __future__ import annotations

import time
from typing import Any

from rich.markup import escape
from rich.table import Table

from powerx.cli.render import console

__all__ = ["STATE_COLORS", "render_status"]


def _debug_cell(plugin: dict[str, Any]) -> str:
    """The stable port an IDE attaches to, and whether a debugger is in the generation."""
    port = plugin.get("debug_port")
    if not port:
        return "-"
    return f"[yellow]:{port} on[/]" if plugin.get("debugging") else f"[dim]:{port}[/]"


# A state missing here is red: the plugin is not serving what was saved.
STATE_COLORS = {"running": "green", "stale": "yellow", "starting": "yellow", "draining": "yellow"}


def render_status(data: dict[str, Any]) -> None:
    host = data["host"]
    console.print(
        f"[bold]{host['url']}[/]  {host['image']} (host API {host['api_version']})  "
        f"tenant {host['tenant']}"
    )
    console.print(_containment_line(host.get("containment")), soft_wrap=True)
    grpc = host.get("grpc") or {}
    if grpc.get("address"):  # for plugins (PX_GRPC_UPSTREAM_ADDRESS); grpcurl needs a token
        services = ", ".join(name.rsplit(".", 1)[-1] for name in grpc.get("services", []))
        console.print(f"gRPC for plugins: {escape(grpc['address'])}  ({services})", soft_wrap=True)
    table = Table(show_edge=False, header_style="bold")
    # Ids stay whole (they are copied into other commands); when the terminal is narrow
    # the other columns fold instead of ending in an ellipsis.
    table.add_column("plugin", no_wrap=True)
    for column in ("runtime", "version", "state", "gen", "artefact", "pid", "debug"):
        table.add_column(column, overflow="fold")
    for plugin in data["plugins"]:
        state = plugin["state"]
        color = STATE_COLORS.get(state, "red")
        table.add_row(
            plugin["id"],
            _cell(plugin["runtime"]),
            _cell(plugin["version"]),
            f"[{color}]{state}[/]",
            _cell(plugin["generation"]),
            (plugin["digest"] or "-")[:12],
            _cell(plugin["pid"]),
            _debug_cell(plugin),
        )
    console.print(table)
    for plugin in data["plugins"]:
        if plugin.get("dependencies"):
            console.print(_dependencies_line(plugin), soft_wrap=True)
    for plugin in data["plugins"]:
        if plugin.get("failure"):
            console.print(_failure_line(plugin), soft_wrap=True)


def _dependencies_line(plugin: dict[str, Any]) -> str:
    """A Python plugin's own environment: how many packages, from which file, where."""
    found = plugin["dependencies"]
    count = len(found["packages"])
    line = (
        f"{escape(plugin['id'])}: {count} package{'' if count == 1 else 's'} from "
        f"{escape(found['declared_in'])} [dim]({escape(found['environment'])})[/]"
    )
    if found.get("note"):
        line += f"\n  [yellow]{escape(found['note'])}[/]"
    return line


def _containment_line(found: dict[str, Any] | None) -> str:
    """Whether the plugins run in an OS sandbox; "not contained" says why and what to do."""
    if not found:
        return "[dim]containment: unknown (an older simulator)[/]"
    if found["contained"]:
        return f"[green]contained[/] {escape(found['reason'])}"
    line = f"[red]not contained:[/] {escape(found['reason'])}; in-process guards only"
    if found.get("fix"):
        line += f"\n  [dim]fix: {escape(found['fix'])}[/]"
    return line


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def _failure_line(plugin: dict[str, Any]) -> str:
    """Why a plugin is stale or failed: the last reload's error, when, and what serves."""
    failure = plugin["failure"]
    when = time.strftime("%H:%M:%S", time.localtime(failure["at"]))
    plugin_id, state = escape(plugin["id"]), plugin["state"]
    if state == "stale":
        head = (
            f"[yellow]{plugin_id} is stale:[/] generation {plugin['generation']} serves code "
            f"older than the last save; the reload at {when} failed"
        )
    elif state == "failed":
        head = f"[red]{plugin_id} is not serving:[/] it never started; the try at {when} failed"
    else:
        head = f"[red]{plugin_id} ({state}):[/] the last reload, at {when}, failed"
    line = f"{head}\n  [red]{escape(failure['code'])}[/] {escape(failure['message'])}"
    if failure.get("fix"):
        line += f"\n  [dim]fix: {escape(failure['fix'])}[/]"
    return line
