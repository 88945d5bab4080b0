"""`powerx doctor`: check runtimes, flags, login and plugins against the image."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from powerx.cli.checks import diagnose
from powerx.cli.render import console, err_console, problem_lines

_MARK = {"ok": "[green]✓[/]", "warn": "[yellow]![/]", "fail": "[red]✗[/]"}


def _progress(line: str) -> None:
    err_console.print(f"[dim]dependencies: {escape(line)}[/]")


def doctor(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Plugin folders to check (default: this folder).")
    ] = None,
    config_path: Annotated[
        Path | None, typer.Option("--config", help="host_simulator.yaml to use.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per check, one per line.")
    ] = False,
) -> None:
    """Check that everything needed to run your plugins is in place.

    Exits non-zero when something blocks (a ✗ line); each line says how to fix it.

    Examples:

      powerx doctor examples/hello-python examples/hello-node

      powerx doctor --json
    """
    checks = diagnose(list(paths or []), config_path, _progress)
    if as_json:
        for check in checks:
            print(json.dumps(check.to_dict()), flush=True)
    else:
        table = Table(show_header=False, show_edge=False, box=None, padding=(0, 1))
        for _ in range(3):  # mark, name, detail: paths fold, never end in an ellipsis
            table.add_column(overflow="fold")
        for check in checks:
            detail = escape(check.detail) + (
                f"\n[dim]fix: {escape(check.fix)}[/]" if check.fix else ""
            )
            for line in problem_lines(check.problems, indent="", stated=check.detail):
                detail += f"\n{line}"
            table.add_row(_MARK[check.status], escape(check.name), detail)
        console.print(table)
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(1)
