"""`powerx telemetry`: summary and telemetry <-> audit reconciliation."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape

from powerx.cli.render import console, err_console
from powerx.client.telemetry import project_summary, reconcile_project

app = typer.Typer(
    help="Reload telemetry kept by the simulator (.powerx/telemetry.db).", no_args_is_help=True
)


def render_summary(data: dict[str, Any]) -> None:
    def ms(value: object) -> str:
        return f"{value:.0f} ms" if isinstance(value, int | float) else "-"

    console.print(
        f"reloads [bold]{data['reloads']}[/]  ok {data['ok']}  failed {data['failed']}  "
        f"blocked {data['blocked']}  unchanged {data['unchanged']}"
    )
    console.print(
        f"success rate [bold]{data['success_rate']:.1%}[/]  p50 {ms(data['p50_ms'])}  "
        f"p95 {ms(data['p95_ms'])}  version mismatches {data['mismatches']}"
    )
    for reason, count in sorted(data["failures_by_reason"].items(), key=lambda kv: -kv[1]):
        console.print(f"  [red]{escape(reason)}[/] {count}")


@app.command()
def summary(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Reloads, success rate, p50/p95 latency, failures by reason, version mismatches.

    Examples:

      powerx telemetry summary
    """
    data = project_summary()
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        render_summary(data)


@app.command("reconcile")
def reconcile_command(
    fix: Annotated[
        bool, typer.Option("--fix", help="Repair: rebuild missing rows from the other side.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Compare telemetry with the audit log; every reload must be in both.

    Exit code 1 when differences remain (after --fix: when some could not be repaired).

    Examples:

      powerx telemetry reconcile

      powerx telemetry reconcile --fix
    """
    report = reconcile_project(fix)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        differences = report["differences"]
        if not differences:
            console.print(
                f"[green]✓[/] telemetry and audit agree: {report['telemetry_rows']} reloads, "
                f"{report['audit_rows']} audited"
            )
        for difference in differences:
            err_console.print(
                f"  [yellow]•[/] [dim]\\[{difference['kind']}][/] {escape(difference['message'])}"
            )
        if differences and fix:
            console.print(f"[green]repaired {report['repaired']} of {len(differences)}[/]")
        elif differences:
            err_console.print("  [bold]fix:[/] run `powerx telemetry reconcile --fix`")
    if not report["ok"]:
        raise typer.Exit(1)
