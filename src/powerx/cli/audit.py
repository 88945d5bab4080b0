"""`powerx audit`: read and verify the simulator's hash-chained audit log."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from powerx.cli.render import console, err_console
from powerx.observe.audit import open_readonly
from powerx.observe.observer import AUDIT_DB
from powerx.paths import state_dir

app = typer.Typer(
    help="The audit log: every debug action (start, reload, mismatch block, rollback, "
    "permission denial ...), hash-chained so an edited, removed or reordered row shows.",
    no_args_is_help=True,
)


@app.command("list")
def list_records(
    plugin: Annotated[str | None, typer.Option("--plugin", "-p", help="Only this plugin.")] = None,
    action: Annotated[
        str | None, typer.Option("--action", "-a", help="Only this action, e.g. reload.blocked.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Newest rows shown.")] = 50,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per row, one per line (for jq).")
    ] = False,
) -> None:
    """List audit rows, oldest first (reads .powerx/audit.db; works with the simulator
    running or stopped).

    Examples:

      powerx audit list --plugin com.example.hello-python

      powerx audit list --action reload.blocked --json
    """
    log = open_readonly(state_dir() / AUDIT_DB)
    try:
        records = log.records(plugin=plugin, action=action, limit=limit)
    finally:
        log.close()
    if as_json:
        for record in records:
            print(json.dumps(record.to_dict()), flush=True)
        return
    table = Table(show_edge=False, header_style="bold")
    for column in ("seq", "time", "action", "plugin", "details"):
        table.add_column(column, overflow="fold")
    for record in records:
        summary = ", ".join(
            f"{k}={str(v)[:24]}" for k, v in record.details.items() if v not in (None, "", {})
        )
        table.add_row(
            str(record.seq),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.ts)),
            record.action,
            escape(record.plugin or ""),
            escape(summary[:100]),
        )
    console.print(table)


@app.command()
def verify(
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check the hash chain; exit code 1 and the rows named when anything was changed.

    Examples:

      powerx audit verify
    """
    log = open_readonly(state_dir() / AUDIT_DB)
    try:
        result = log.verify()
    finally:
        log.close()
    if as_json:
        print(
            json.dumps(
                {
                    "ok": result.ok,
                    "checked": result.checked,
                    "problems": [p.__dict__ for p in result.problems],
                },
                indent=2,
            )
        )
    elif result.ok:
        console.print(f"[green]✓[/] audit chain intact: {result.checked} rows verified")
        for problem in result.problems:  # warnings only, e.g. the head anchor is missing
            err_console.print(
                f"  [yellow]•[/] [dim]\\[{problem.kind}][/] {escape(problem.message)}"
            )
    else:
        err_console.print(
            f"[bold red]✗ audit chain broken[/]: {len(result.problems)} problem(s) in "
            f"{result.checked} rows"
        )
        for problem in result.problems:
            err_console.print(f"  [red]•[/] [dim]\\[{problem.kind}][/] {escape(problem.message)}")
        err_console.print(
            "  [bold]fix:[/] the log was changed outside the simulator; keep this copy as "
            "evidence and start a fresh one by moving .powerx/audit.db* aside."
        )
    if not result.ok:
        raise typer.Exit(1)
