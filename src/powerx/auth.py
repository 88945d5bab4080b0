"""The developer credential: ``powerx login`` writes it, the simulator checks it.

The credential lives in the per-user config dir (mode 0600). In mock mode the token is
minted locally; with ``--token`` it is the developer's real PowerX token, whose scopes
the real platform would report; that platform is the one thing we mock, so the scopes
are recorded at login.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.paths import config_home

DEBUG_SCOPE = "plugin:debug"
MOCK_SCOPES = ("plugin:debug", "plugin:deploy", "plugin:read")


@dataclass(frozen=True)
class Credential:
    token: str
    scopes: tuple[str, ...]
    mode: Literal["mock", "token"]

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


def credential_file() -> Path:
    return config_home() / "credentials.json"


def save_credential(credential: Credential) -> Path:
    path = credential_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(
            {"token": credential.token, "scopes": list(credential.scopes), "mode": credential.mode},
            handle,
        )
    os.replace(tmp, path)
    return path


def login_mock(scopes: tuple[str, ...] = MOCK_SCOPES) -> Credential:
    credential = Credential(token=f"pxm_{secrets.token_urlsafe(24)}", scopes=scopes, mode="mock")
    save_credential(credential)
    return credential


def login_token(token: str, scopes: tuple[str, ...]) -> Credential:
    if len(token.strip()) < 16 or any(c.isspace() for c in token.strip()):
        raise PowerXError(
            ErrorCode.TOKEN_INVALID,
            "That does not look like a PowerX token.",
            "copy the whole token from the PowerX console (no spaces).",
        )
    credential = Credential(token=token.strip(), scopes=scopes, mode="token")
    save_credential(credential)
    return credential


def load_credential() -> Credential | None:
    path = credential_file()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Credential(token=str(raw["token"]), scopes=tuple(raw["scopes"]), mode=raw["mode"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        raise PowerXError(
            ErrorCode.CREDENTIAL_CORRUPT,
            f"The credential file {path} is unreadable.",
            "run `powerx login --mock` again to rewrite it.",
        ) from None


def require_credential() -> Credential:
    credential = load_credential()
    if credential is None:
        raise PowerXError(
            ErrorCode.NOT_LOGGED_IN,
            "You are not logged in.",
            "run `powerx login --mock` (local) or `powerx login --token TOKEN`.",
            status=401,
        )
    return credential


def check_bearer(header: str | None, scope: str = DEBUG_SCOPE) -> Credential:
    """Check an ``Authorization`` header against the stored credential (401/403 on failure)."""
    fix_login = (
        "run `powerx login --mock`, then call with 'Authorization: Bearer <token>' "
        "(the CLI does this for you)."
    )
    if not header or not header.lower().startswith("bearer "):
        raise PowerXError(
            ErrorCode.UNAUTHENTICATED,
            "This endpoint needs a bearer credential.",
            fix_login,
            status=401,
        )
    presented = header[7:].strip()
    credential = load_credential()
    if credential is None or not hmac.compare_digest(presented.encode(), credential.token.encode()):
        raise PowerXError(
            ErrorCode.UNAUTHENTICATED,
            "The bearer credential is not valid for this simulator.",
            fix_login,
            status=401,
        )
    if not credential.has_scope(scope):
        raise PowerXError(
            ErrorCode.MISSING_SCOPE,
            f"The credential lacks the scope '{scope}'.",
            f"log in again with that scope: `powerx login --mock` or "
            f"`powerx login --token TOKEN --scope {scope}`.",
            status=403,
        )
    return credential
