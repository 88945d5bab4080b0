"""Rendering shared by the commands: errors, warnings, tables."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from powerx.errors import PowerXError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def render_error(error: PowerXError) -> None:
    err_console.print(f"[bold red]error[/] [dim]\\[{error.code}][/] {escape(error.message)}")
    for problem in error.problems:
        line = f"  [red]•[/] {escape(problem.message)}"
        if problem.fix:
            line += f"\n      [dim]fix:[/] {escape(problem.fix)}"
        err_console.print(line)
    if error.fix:
        err_console.print(f"  [bold]fix:[/] {escape(error.fix)}")


def warn(text: str) -> None:
    err_console.print(f"[yellow]warning[/] {escape(text)}")
