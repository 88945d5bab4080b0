"""How `powerx host start` tells the person in the terminal what happens: plugins built
and mounted (or not), the simulator up with its links, plugin log lines, mock data
reloaded, stopping (the ``StartReporter`` of the foreground run, rendered with rich)."""

from __future__ import annotations

from rich.markup import escape

from powerx.bundling.artefact import Artefact
from powerx.cli.render import console, err_console
from powerx.errors import PowerXError
from powerx.host.generations import Generation, LogLine
from powerx.host.mock_data import MockDataChange
from powerx.host.preflight import PluginPlan
from powerx.host.simulator import Simulator

__all__ = ["ConsoleReporter"]


class ConsoleReporter:
    """Progress and plugin output of a foreground simulator, for a person at a terminal."""

    def building(self, plan: PluginPlan) -> None:
        err_console.print(f"[dim]building[/] {plan.manifest.id} ({plan.manifest.runtime}) ...")

    def built(self, artefact: Artefact) -> None:
        err_console.print(
            f"[dim]built[/] {artefact.manifest.id} in {artefact.build_ms:.0f} ms "
            f"[dim]artefact {artefact.digest[:12]}[/]"
        )

    def mounted(self, plan: PluginPlan, generation: Generation) -> None:
        err_console.print(
            f"[green]✓[/] mounted {plan.manifest.id} generation {generation.number} "
            f"(pid {generation.pid}, ready in {generation.start_ms:.0f} ms)"
        )

    def not_mounted(self, plan: PluginPlan, error: PowerXError) -> None:
        err_console.print(
            f"[red]✗[/] {plan.manifest.id} not mounted: [red]{error.code}[/] "
            f"{escape(error.message)}"
        )
        if error.fix:
            err_console.print(f"  [dim]fix: {escape(error.fix)}[/]")
        err_console.print("  [dim]watching it: the first save that starts cleanly mounts it[/]")

    def ready(self, url: str, simulator: Simulator, dashboard_key: str) -> None:
        console.print(
            f"\n[bold green]PowerX host simulator[/] {simulator.image.name} "
            f"(host API {simulator.image.api_version}) is up"
        )
        console.print(f"  dashboard: [bold]{url}/dashboard?key={dashboard_key}[/]", soft_wrap=True)
        plugins = simulator.status()["plugins"]
        for plugin in plugins:
            failed = " [red](failed: not serving until a clean save)[/]"
            console.print(
                f"  plugin:    {url}/plugins/{plugin['id']}/"
                + (failed if plugin["state"] == "failed" else "")
            )
        if not plugins:
            console.print(
                "  [yellow]no plugins yet:[/] run `powerx dev DIR` (in another terminal) to "
                "mount the plugin in DIR and reload it on every save"
            )
        console.print("  [dim]stop with Ctrl-C or `powerx host stop`[/]\n")

    def log(self, line: LogLine) -> None:
        style = {"stderr": "yellow", "system": "red"}.get(line.stream, "dim")
        err_console.print(
            f"[{style}]{escape(line.plugin)}#{line.generation}[/] {escape(line.line)}"
        )

    def mock_data(self, change: MockDataChange) -> None:
        state = change.state
        where = escape(str(state.file)) if state.file else f"tenant {escape(change.tenant)}"
        if change.status == "refused" and state.problem is not None:
            err_console.print(f"[red]✗ mock data refused[/] {escape(state.problem.message)}")
            if state.problem.fix:
                err_console.print(f"  [bold]fix:[/] {escape(state.problem.fix)}")
            err_console.print(f"  the last good data of tenant {escape(change.tenant)} stays")
        elif change.status == "seeded":
            err_console.print(f"[dim]mock data of tenant {escape(change.tenant)}: {where}[/]")
        else:
            what = "applied" if change.status == "applied" else "reset to its seed"
            err_console.print(
                f"[green]✓[/] mock data of tenant {escape(change.tenant)} {what} "
                f"[dim]({where}, revision {state.revision})[/]"
            )

    def stopping(self) -> None:
        err_console.print("[dim]stopping plugins ...[/]")

    def say(self, text: str) -> None:
        console.print(f"[dim]{escape(text)}[/]", soft_wrap=True)
