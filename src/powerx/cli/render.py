"""Rendering shared by the commands: errors, warnings, tables."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from powerx.errors import PowerXError, Problem

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


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
