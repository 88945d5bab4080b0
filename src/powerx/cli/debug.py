"""`powerx debug`: breakpoints that survive every reload, from the terminal or VS Code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from powerx.cli.debug_console import HELP, DebugConsole
from powerx.cli.render import console, err_console
from powerx.client import sync as client
from powerx.debug.ide_access import SECRET_ARGUMENT
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError

app = typer.Typer(
    help="Debug a plugin in the running simulator. Breakpoints live in the simulator: they "
    "are replayed into every new generation, so they survive every reload, and the terminal "
    "console and VS Code share them.",
    no_args_is_help=True,
)


ATTACH_HELP = (
    "Open the terminal debugger on a plugin of the running simulator.\n\n"
    "The serving generation restarts once with the debugger in it (a few hundred ms); from "
    "then on every reload replays the breakpoints before the new generation takes traffic. "
    "If the plugin reloads while paused, you are told, the paused request finishes in the "
    "old generation, and the breakpoints carry over.\n\nCommands:\n\n\b\n"
    + escape(HELP)
    + """

Example:

  powerx debug attach com.example.hello-python -c 'break app.py:17'
"""
)


@app.command(help=ATTACH_HELP)
def attach(
    plugin: Annotated[str, typer.Argument(help="Plugin id, e.g. com.example.hello-python.")],
    commands: Annotated[
        list[str] | None,
        typer.Option(
            "--command",
            "-c",
            help="Run this command first (repeatable), e.g. -c 'break app.py:17'.",
        ),
    ] = None,
) -> None:
    session = DebugConsole(plugin, console)
    state = session.attach()
    count = len(state.get("breakpoints") or [])
    console.print(
        f"attached to [bold]{escape(plugin)}[/] (generation {state.get('generation')}); "
        f"{count} breakpoint(s). Type [bold]help[/] for commands, [bold]quit[/] to leave."
    )
    try:
        for command in commands or []:
            console.print(f"(powerx) {escape(command)}")
            session.run_command(command)
        while True:
            try:
                line = session.read_command()
            except EOFError:
                break
            if not session.run_command(line):
                break
    except KeyboardInterrupt:
        console.print()
    finally:
        session.detach()
        err_console.print("[dim]detached; breakpoints stay set (clear them with `clear`)[/]")


@app.command()
def breakpoints(
    plugin: Annotated[str, typer.Argument(help="Plugin id.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per breakpoint, one per line.")
    ] = False,
) -> None:
    """List a plugin's breakpoints: where, kind, verified in the serving generation, hits.

    Examples:

      powerx debug breakpoints com.example.hello-python

      powerx debug breakpoints com.example.hello-python --json | jq 'select(.verified)'
    """
    if as_json:
        body = client.request("GET", f"/internal/debug/breakpoints/{plugin}")
        for bp in body["breakpoints"]:
            print(json.dumps(bp), flush=True)
        return
    DebugConsole(plugin, console).run_command("list")


@app.command()
def vscode(
    plugin: Annotated[str, typer.Argument(help="Plugin id.")],
    write: Annotated[
        bool,
        typer.Option(
            "--write",
            help="Put the configuration into the plugin folder's .vscode/launch.json (the "
            "entry named 'PowerX: <id>' is replaced, the others are kept).",
        ),
    ] = False,
) -> None:
    """Print a .vscode/launch.json configuration that attaches VS Code to the plugin.

    VS Code attaches once to the plugin's stable debug port (it stays the same across
    reloads and simulator restarts); breakpoints you set in the editor are kept by the
    simulator and replayed into every new generation. Open the plugin folder as the
    workspace so its paths match. The output is valid JSON: paste it into launch.json.

    The configuration carries the debug port's secret, which changes each time the
    simulator starts: run this again after a restart. For a Node plugin the Chrome
    DevTools URL is printed as well (on stderr).

    Examples:

      powerx debug vscode com.example.hello-python

      powerx debug vscode com.example.hello-python | jq ".configurations[0].port"

      powerx debug vscode com.example.hello-python --write
    """
    access = client.request("GET", f"/internal/debug/sessions/{plugin}/ide")
    entry = launch_entry(access)
    if write:
        path = Path(str(access.get("source"))) / ".vscode" / "launch.json"
        write_launch_entry(path, entry)
        print(path)
    else:
        print(json.dumps({"version": "0.2.0", "configurations": [entry]}, indent=2))
    if access.get("devtools"):
        # soft_wrap: a URL broken over lines could not be pasted
        err_console.print(
            f"[dim]Chrome DevTools:[/] {escape(str(access['devtools']))}", soft_wrap=True
        )
    err_console.print(
        f"[dim]plugin folder: {escape(str(access.get('source')))} (open it in VS Code, "
        "then Run and Debug > PowerX); the secret is valid until the simulator stops[/]"
    )


def write_launch_entry(path: Path, entry: dict[str, object]) -> None:
    """Replace the configuration of the same name in ``path`` (or add it), keeping the
    file's other configurations; its ``//`` comment lines are dropped."""
    data: dict[str, Any] = {"version": "0.2.0", "configurations": []}
    if path.is_file():
        text = "\n".join(
            line
            for line in path.read_text(encoding="utf-8").splitlines()
            if not line.lstrip().startswith("//")
        )
        try:
            data = json.loads(text) if text.strip() else data
        except ValueError as error:
            raise PowerXError(
                ErrorCode.LAUNCH_JSON_INVALID,
                f"{path} is not JSON this command can edit ({error}).",
                "fix the file, or print the configuration without --write and paste it.",
            ) from None
    if not isinstance(data, dict) or not isinstance(data.get("configurations", []), list):
        raise PowerXError(
            ErrorCode.LAUNCH_JSON_INVALID,
            f"{path} has no configurations list.",
            "fix the file, or print the configuration without --write and paste it.",
        )
    kept = [c for c in data.get("configurations", []) if c.get("name") != entry["name"]]
    data["configurations"] = [*kept, entry]
    data.setdefault("version", "0.2.0")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def launch_entry(access: dict[str, Any]) -> dict[str, object]:
    """One launch.json configuration for the IDE port ``access`` describes."""
    name = f"PowerX: {access['plugin']}"
    if access.get("websocket"):
        # js-debug takes the inspector's URL (secret in its path) and reconnects to it by
        # itself when a reload closes the socket.
        return {
            "name": name,
            "type": "node",
            "request": "attach",
            "websocketAddress": access["websocket"],
            "restart": {"delay": 50, "maxAttempts": 100},
            "sourceMaps": True,
            "skipFiles": ["<node_internals>/**"],
        }
    # VS Code passes the configuration's own keys in the attach request: the proxy takes
    # the secret from there.
    if access.get("runtime") == "go":
        # The Go extension's remote attach: it speaks DAP to the port as to `dlv dap`.
        return {
            "name": name,
            "type": "go",
            "request": "attach",
            "mode": "remote",
            "host": access["host"],
            "port": access["port"],
            SECRET_ARGUMENT: access["secret"],
        }
    return {
        "name": name,
        "type": "debugpy",
        "request": "attach",
        "connect": {"host": access["host"], "port": access["port"]},
        SECRET_ARGUMENT: access["secret"],
        "justMyCode": True,
    }
