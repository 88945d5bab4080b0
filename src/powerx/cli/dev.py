"""`powerx dev`: watch plugin folders and hot-reload every save into the running simulator."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from powerx.auth import require_credential
from powerx.cli import hotkeys
from powerx.cli.render import console, err_console, problem_lines
from powerx.client.dev import SimulatorClient
from powerx.client.sync import running_url
from powerx.errors import PowerXError
from powerx.manifest import load_manifest
from powerx.paths import state_dir
from powerx.reload.executor import ReloadOutcome, run_dev
from powerx.reload.type_checks import TypeCheckReport
from powerx.reload.watcher import WatchPlan

PHASES = (
    ("build_ms", "build"),
    ("upload_ms", "upload"),
    ("start_ms", "start"),
    ("swap_ms", "swap"),
)
# A reload's line lists this many of its error's problems (a manifest's bad fields, the
# next broken lines of a build); `powerx doctor` lists them all.
MAX_PROBLEMS = 8


def format_outcome(outcome: ReloadOutcome) -> str:
    """One line per reload: result, generation, total ms and the phases."""
    changed = ", ".join(outcome.changed[:3]) + (" ..." if len(outcome.changed) > 3 else "")
    if outcome.ok and outcome.status == "unchanged":
        return (
            f"[dim]= {escape(outcome.plugin)}  unchanged, generation {outcome.generation} "
            f"keeps serving  {outcome.total_ms:.0f} ms[/]"
        )
    if outcome.ok:
        phases = " · ".join(f"{label} {outcome.timings.get(key, 0):.0f}" for key, label in PHASES)
        if "install_ms" in outcome.timings:  # its dependencies were installed first
            phases = f"install {outcome.timings['install_ms']:.0f} · {phases}"
        if outcome.debug:
            # Shown so the developer sees the breakpoints carried into the new generation.
            debug = outcome.debug
            phases += (
                f" · {debug['verified']:.0f}/{debug['breakpoints']:.0f} breakpoints "
                f"in {debug['replay_ms']:.0f}"
            )
        return (
            f"[green]✓[/] {escape(outcome.plugin)}  gen {outcome.generation}  "
            f"[bold]{outcome.total_ms:.0f} ms[/]  [dim]({phases})  {escape(changed)}[/]"
        )
    error = outcome.error
    assert error is not None
    line = f"[red]✗[/] {escape(outcome.plugin)}  [red]{error.code}[/] {escape(error.message)}"
    if error.fix:
        line += f"\n  [dim]fix: {escape(error.fix)}[/]"
    for problem in problem_lines(error.problems, "    ", stated=error.message, limit=MAX_PROBLEMS):
        line += f"\n{problem}"
    if outcome.generation is not None:
        line += f"\n  [dim]generation {outcome.generation} keeps serving[/]"
    return line


def format_type_check(report: TypeCheckReport, before: str | None) -> str | None:
    """The lines a type check adds after the reload line (None: nothing to say, it is
    clean as it was). ``before``: the state of the plugin's previous check by this tool."""
    plugin, tool = escape(report.plugin), escape(report.tool)
    took = f"{tool}, {report.duration_ms:.0f} ms"
    if report.state == "clean":
        if before == "clean":
            return None
        return f"[green]✓[/] {plugin}  [dim]types clean ({took})[/]"
    if report.state == "unavailable":
        fix = f"  fix: {escape(report.fix)}" if report.fix else ""
        return f"[dim]· {plugin}  {escape(report.message)}{fix}[/]"
    if report.state == "failed":
        message = escape(report.message)
        return f"[yellow]⚠[/] {plugin}  [yellow]type check failed[/] ({tool}): {message}"
    count = len(report.problems)
    line = (
        f"[yellow]⚠[/] {plugin}  [yellow]{count} type error{'s' if count != 1 else ''}[/] "
        f"[dim]({took}; the reload went ahead)[/]"
    )
    for problem in report.problems[:MAX_PROBLEMS]:
        where, code = escape(problem.where), escape(problem.code)
        line += f"\n    {where}  [dim]{code}[/] {escape(problem.message)}"
    if count > MAX_PROBLEMS:
        line += f"\n    [dim]... {count - MAX_PROBLEMS} more: run {tool} in the plugin folder[/]"
    return line


class DevConsole:
    def __init__(self) -> None:
        self._checked: dict[tuple[str, str], str] = {}  # (plugin, tool) -> last state

    def watching(self, plan: WatchPlan) -> None:
        how = f"polling: {plan.reason}" if plan.polling else plan.reason
        names = ", ".join(f"{f.name}/" for f in plan.folders) or "no subfolders"
        err_console.print(
            f"[dim]watching {escape(str(plan.root))} and {escape(names)} ({escape(how)})[/]"
        )

    def reloaded(self, outcome: ReloadOutcome) -> None:
        console.print(format_outcome(outcome))

    def dependencies(self, plugin: str, line: str) -> None:
        """A step of installing a Node plugin's package.json, as the build does it."""
        console.print(f"[dim]… {escape(plugin)}  dependencies: {escape(line)}[/]")

    def declaration_changed(self, plugin: str, files: list[str]) -> None:
        """Said before the push: installing can take a while, the line comes after."""
        console.print(
            f"[dim]… {escape(plugin)}  {escape(', '.join(files))} changed: installing its "
            "dependencies (progress in the simulator's log) ...[/]"
        )

    def type_checked(self, report: TypeCheckReport) -> None:
        key = (report.plugin, report.tool)
        line = format_type_check(report, self._checked.get(key))
        self._checked[key] = report.state
        if line is not None:
            console.print(line)

    def alert(self, state: str, alert: dict[str, Any]) -> None:
        message = escape(str(alert.get("message", "")))
        if state == "raised":
            console.print(f"[bold yellow]⚠ alert[/] [yellow]{message}[/]")
        else:
            console.print(f"[green]✓ alert cleared[/] [dim]{message}[/]")


class DevActions:
    """The hotkeys of `powerx dev` (``cli/hotkeys.py``), acting over HTTP on the running
    simulator for the plugins this command watches."""

    def __init__(self, client: SimulatorClient, plugins: list[str], stop: asyncio.Event) -> None:
        self.client = client
        self.plugins = plugins
        self.stop = stop

    def plugin_ids(self) -> list[str]:
        return list(self.plugins)

    async def plugin_urls(self) -> list[str]:
        status = await self.client.status()
        return [str(p["url"]) for p in status["plugins"] if p["id"] in self.plugins and p["url"]]

    async def dashboard_url(self) -> str:
        return await self.client.dashboard_url()

    async def restart(self, plugin: str) -> str:
        try:
            answer = await self.client.restart(plugin)
        except PowerXError as error:
            return f"restart of {plugin} failed: {error.message} ({error.code}); {error.fix}"
        return f"restarted {plugin}: generation {answer['generation']}"

    def quit(self) -> None:
        self.stop.set()


def _say(text: str) -> None:
    console.print(f"[dim]{escape(text)}[/]", soft_wrap=True)


def dev(
    paths: Annotated[list[Path], typer.Argument(help="Plugin folders to watch.")],
    poll: Annotated[
        bool,
        typer.Option(
            "--poll",
            help="Poll for changes instead of native file "
            "events (auto on WSL /mnt and network shares).",
        ),
    ] = False,
) -> None:
    """Watch plugin folders and hot-reload each save into the running simulator.

    Each reload prints one line: result, generation, total ms and the phases
    (build, upload, start, swap). A broken edit never replaces the serving generation.

    Examples:

      powerx host start --mock ./my-plugin      # in one terminal

      powerx dev ./my-plugin                    # in another; then edit and save

      powerx dev ./plugin-a ./plugin-b --poll   # several plugins; polling watcher
    """
    plugin_ids = [load_manifest(path).id for path in paths]  # refuse a bad folder first
    url = running_url()
    credential = require_credential()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        client = SimulatorClient(url, credential.token)
        try:
            with contextlib.ExitStack() as keys:
                if hotkeys.wanted():
                    _say(hotkeys.legend())
                    actions = DevActions(client, plugin_ids, stop)
                    keys.enter_context(hotkeys.listening(hotkeys.Hotkeys(actions, _say)))
                await run_dev(
                    paths, client, state_dir() / "build", DevConsole(), stop, force_polling=poll
                )
        finally:
            await client.close()

    err_console.print(
        f"[dim]pushing to {url}; Ctrl-C stops watching (the simulator keeps running)[/]"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
