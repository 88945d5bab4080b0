"""Entry point of the ``powerx`` command."""

from __future__ import annotations

import os
import sys
import traceback
from typing import NoReturn

import typer
from rich.markup import escape

from powerx import __version__
from powerx.cli import audit, data, debug, host, telemetry, tools
from powerx.cli.dev import dev
from powerx.cli.doctor import doctor
from powerx.cli.init import init
from powerx.cli.login import login
from powerx.cli.logs import logs
from powerx.cli.render import err_console, render_error
from powerx.cli.requests import requests
from powerx.errors import PowerXError, storage_error

app = typer.Typer(
    name="powerx",
    help="PowerX DevKit: run, reload and debug PowerX plugins on your machine.\n\n"
    "Start here:  powerx login --mock  &&  powerx host start --mock ./my-plugin",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(init)
app.command()(login)
app.command()(doctor)
app.command()(dev)
app.command()(logs)
app.command()(requests)
app.add_typer(host.app, name="host")
app.add_typer(audit.app, name="audit")
app.add_typer(telemetry.app, name="telemetry")
app.add_typer(debug.app, name="debug")
app.add_typer(tools.app, name="tools")
app.add_typer(data.app, name="data")


@app.command()
def version() -> None:
    """Print the DevKit version.

    Example:

      powerx version
    """
    print(__version__)


def run() -> None:
    """Console-script entry: render user errors as message + fix, never as a traceback."""
    try:
        app()
    except PowerXError as error:
        render_error(error)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:
        storage = storage_error(exc)
        if storage is None:
            _internal_error(exc)
        render_error(storage)
        sys.exit(1)
    except Exception as exc:  # a bug of ours, not the user's: say so, hide the noise
        _internal_error(exc)


def _internal_error(exc: BaseException) -> NoReturn:
    if os.environ.get("POWERX_DEBUG"):
        traceback.print_exception(exc)
    err_console.print(f"[bold red]internal error[/] {type(exc).__name__}: {escape(str(exc))}")
    err_console.print("  [bold]fix:[/] rerun with POWERX_DEBUG=1 for details and report it.")
    sys.exit(70)


if __name__ == "__main__":
    run()
