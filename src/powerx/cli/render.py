"""Rendering shared by the commands: errors, warnings, tables.

Plugin text (log lines, messages, paths, ids) reaches these consoles: it is shown as
written. Markup in it is escaped where it is put in a line, and no console turns
``:name:`` into an emoji (a log line ``INFO:notes:`` must stay that). Output that goes to
a pipe or a file is read by programs (grep, a log file): plain, one line per line, whole.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from powerx.errors import PowerXError

# Piped, a console is as wide as this: tables take their natural width, lines never wrap.
PIPED_WIDTH = 100_000


def _console(stderr: bool) -> Console:
    console = Console(stderr=stderr, highlight=False, emoji=False)
    if not console.is_terminal:
        # Not a terminal: no colour (rich's own rule), and no wrapping at COLUMNS or 80.
        console.soft_wrap = True
        console.width = PIPED_WIDTH
    return console


console = _console(stderr=False)
err_console = _console(stderr=True)


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
