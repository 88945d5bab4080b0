"""Rendering shared by the commands: errors, warnings, tables.

Plugin text (log lines, messages, paths, ids) reaches these consoles: it is shown as
written. Markup in it is escaped where it is put in a line, and no console turns
``:name:`` into an emoji (a log line ``INFO:notes:`` must stay that). Output that goes to
a pipe or a file is read by programs (grep, a log file): plain, one line per line, whole.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from powerx.errors import PowerXError, Problem

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


def problem_lines(
    problems: list[Problem], indent: str = "  ", stated: str = "", limit: int | None = None
) -> list[str]:
    """One markup line per problem (where it is, what is wrong, its fix), the list an
    error's "fix each field listed below" points at. A problem the error's message
    already states (``stated``: a build error names its first broken line) is not
    repeated; past ``limit`` one line counts the rest."""
    shown = [p for p in problems if p.message not in stated]
    lines = []
    for problem in shown[:limit]:
        text = problem.message
        if problem.where not in text:
            text = f"{problem.where}: {text}"
        line = f"{indent}[red]•[/] {escape(text)}"
        if problem.fix:
            line += f"\n{indent}    [dim]fix:[/] {escape(problem.fix)}"
        lines.append(line)
    if limit is not None and len(shown) > limit:
        lines.append(f"{indent}[dim]... and {len(shown) - limit} more[/]")
    return lines


def render_error(error: PowerXError) -> None:
    err_console.print(f"[bold red]error[/] [dim]\\[{error.code}][/] {escape(error.message)}")
    if error.fix:
        err_console.print(f"  [bold]fix:[/] {escape(error.fix)}")
    for line in problem_lines(error.problems, stated=error.message):
        err_console.print(line)


def warn(text: str) -> None:
    err_console.print(f"[yellow]warning[/] {escape(text)}")
