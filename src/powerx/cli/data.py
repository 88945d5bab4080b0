"""`powerx data`: the mock tenant data the host API answers with, one editable file per
tenant under .powerx/mock-data/ (list them, or reset one to its seed)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from powerx.cli.render import console, err_console
from powerx.client import sync as client
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.mock_data import FOLDER
from powerx.host.mock_data_file import SUFFIXES, file_name, render, tenant_of
from powerx.host.tenants import seed
from powerx.paths import state_dir
from powerx.running import find_host_info

app = typer.Typer(
    help="The mock tenant data (contacts, messages, members, teams): edit the files, reset them.",
    no_args_is_help=True,
)


def _running() -> bool:
    return find_host_info() is not None


@app.command("list")
def list_data(
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per tenant, one per line.")
    ] = False,
) -> None:
    """List each tenant's mock data file in the running simulator: what it holds and
    whether its last edit was refused (file:line, message, fix).

    Examples:

      powerx data list

      powerx data list --json | jq .file
    """
    found = client.request("GET", "/internal/debug/mock-data")
    for entry in found["tenants"]:
        if as_json:
            print(json.dumps(entry), flush=True)
            continue
        counts = ", ".join(f"{n} {what}" for what, n in entry["counts"].items())
        where = escape(entry["file"] or "in memory only (the name is no file name)")
        console.print(
            f"[bold]{escape(entry['tenant'])}[/] {where} [dim]revision {entry['revision']} · "
            f"{counts}[/]"
        )
        problem = entry["problem"]
        if problem:
            console.print(f"  [red]✗ refused[/] {escape(problem['message'])}")
            if problem["fix"]:
                console.print(f"    [bold]fix:[/] {escape(problem['fix'])}")


def _reset_files(tenant: str | None) -> list[Path]:
    """Without a simulator: write the seed to the files themselves."""
    folder = state_dir() / FOLDER
    if tenant is not None:
        if file_name(tenant) is None:
            raise PowerXError(
                ErrorCode.MOCK_DATA_TENANT_INVALID,
                f"'{tenant[:100]}' cannot be a mock data file's name.",
                "tenant names with files are letters, digits, '.', '_' and '-'.",
            )
        tenants = [tenant]
    else:
        present = sorted(folder.iterdir()) if folder.is_dir() else []
        tenants = sorted({t for t in map(tenant_of, present) if t is not None})
    written = []
    for name in tenants:
        target = folder / str(file_name(name))
        folder.mkdir(parents=True, exist_ok=True)
        for suffix in SUFFIXES:
            if target.with_suffix(suffix) != target:
                target.with_suffix(suffix).unlink(missing_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temporary.write_text(render(name, seed(name)), encoding="utf-8")
        os.replace(temporary, target)
        written.append(target)
    return written


def _say_reset(tenant: str, where: str) -> None:
    console.print(f"[green]✓[/] {escape(tenant)} reset to its seed [dim]{escape(where)}[/]")


@app.command()
def reset(
    tenant: Annotated[
        str | None, typer.Argument(help="The tenant; every tenant with a file when left out.")
    ] = None,
) -> None:
    """Put a tenant's mock data back to its seed (what a fresh simulator makes for it):
    its file is rewritten and, when a simulator runs, served from the next call on.

    Examples:

      powerx data reset acme

      powerx data reset
    """
    if _running():
        body: dict[str, Any] = {"tenant": tenant} if tenant else {}
        done = client.request("POST", "/internal/debug/mock-data/reset", json_body=body)
        for state in done["reset"]:
            where = escape(state["file"] or "in memory")
            console.print(
                f"[green]✓[/] {escape(state['tenant'])} reset to its seed [dim]{where}[/]"
            )
        if not done["reset"]:
            err_console.print("no tenant has mock data yet")
        return
    written = _reset_files(tenant)
    for path in written:
        console.print(
            f"[green]✓[/] {escape(path.stem)} reset to its seed [dim]{escape(str(path))}[/]"
        )
    if not written:
        err_console.print(f"no mock data files in {escape(str(state_dir() / FOLDER))}")
