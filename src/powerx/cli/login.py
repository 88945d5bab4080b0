"""`powerx login`: store the developer credential the simulator checks."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from powerx import auth
from powerx.cli.render import console
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError


def login(
    mock: Annotated[
        bool, typer.Option("--mock", help="Mint a local credential (no PowerX account needed).")
    ] = False,
    token: Annotated[
        str | None,
        typer.Option("--token", help="Store a real PowerX token instead.", envvar="POWERX_TOKEN"),
    ] = None,
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="Scope the credential holds (repeatable).")
    ] = None,
    if_missing: Annotated[
        bool,
        typer.Option("--if-missing", help="Keep an existing credential that has plugin:debug."),
    ] = False,
) -> None:
    """Log in, so the simulator's debug endpoints accept you.

    Examples:

      powerx login --mock                          # local credential with plugin:debug

      powerx login --token "$POWERX_TOKEN"         # your real token, scopes plugin:debug

      powerx login --mock --scope plugin:read      # a credential without plugin:debug
    """
    if mock == (token is not None):
        raise PowerXError(
            ErrorCode.LOGIN_MODE,
            "Choose one of --mock or --token.",
            "run `powerx login --mock` for local development.",
        )
    existing = auth.load_credential() if if_missing else None
    if existing is not None and existing.has_scope(auth.DEBUG_SCOPE):
        console.print(
            f"[green]✓[/] already logged in ({existing.mode}); "
            f"keeping {escape(str(auth.credential_file()))}"
        )
        return
    scopes = tuple(scope) if scope else auth.MOCK_SCOPES
    credential = auth.login_mock(scopes) if mock else auth.login_token(token or "", scopes)
    console.print(
        f"[green]✓[/] logged in ({credential.mode}); scopes: {', '.join(credential.scopes)}"
    )
    console.print(f"  credential: {escape(str(auth.credential_file()))}")
    if not credential.has_scope(auth.DEBUG_SCOPE):
        console.print(
            f"[yellow]warning[/] without {auth.DEBUG_SCOPE} the simulator's debug endpoints "
            "will refuse you"
        )
