"""`powerx init`: a new plugin from a template, ready to serve, test and debug."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from powerx.cli.render import console, err_console
from powerx.scaffold import TEMPLATES, check_id, default_id, default_name, write_plugin

_TEMPLATE_LIST = ", ".join(f"{t.name} ({t.summary})" for t in TEMPLATES.values())


def init(
    folder: Annotated[
        Path, typer.Argument(help="Where to write the plugin (made if missing).")
    ] = Path("."),
    template: Annotated[
        str | None,
        typer.Option("--template", "-t", help=f"One of: {_TEMPLATE_LIST}.", show_default=False),
    ] = None,
    plugin_id: Annotated[
        str | None,
        typer.Option("--id", help="Reverse-DNS id (default: com.example.<folder name>)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Display name (default: from the folder).")
    ] = None,
) -> None:
    """Write a new PowerX plugin: plugin.yaml, its code, a test, .vscode/launch.json,
    .gitignore and a README. Asks for what the options leave out when run in a terminal
    (Enter takes the default); asks nothing when piped. Never overwrites a file.

    Examples:

      powerx init notes --template python

      powerx init notes --template node-backend --id com.acme.notes --name "Notes"
    """
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if template is None:
        template = (
            typer.prompt(f"Template ({', '.join(TEMPLATES)})", default="python")
            if interactive
            else "python"
        )
    if plugin_id is None:
        plugin_id = default_id(folder)
        if interactive:
            plugin_id = typer.prompt("Plugin id", default=plugin_id)
    check_id(plugin_id)
    if name is None:
        name = default_name(folder)
        if interactive:
            name = typer.prompt("Name", default=name)
    written = write_plugin(folder, template, plugin_id, name)
    for path in written:
        print(path)  # stdout: the files, one per line (pipes cleanly)
    chosen = TEMPLATES[template]
    url = chosen.url_path.format(id=plugin_id)
    where = escape(str(folder))
    err_console.print(
        f"[green]wrote[/] {escape(plugin_id)} ({escape(chosen.summary)}) in {where}\n"
        f"next:  powerx host start --mock {where} --watch   then open "
        f"http://127.0.0.1:8787{escape(url)}\n"
        f"test:  cd {where} && {escape(chosen.test_command)}"
    )
    console.file.flush()
