"""One exception hierarchy for every error a user can cause.

Each error carries a stable ``code`` (part of the HTTP and CLI contract), a one-sentence
``message`` and, where one exists, a ``fix``. HTTP handlers and the CLI render it the
same way; a traceback never reaches the user.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a piece of input (a manifest field, a config key...)."""

    where: str
    message: str
    fix: str | None = None

    def to_dict(self) -> dict[str, str]:
        data = {"where": self.where, "message": self.message}
        if self.fix:
            data["fix"] = self.fix
        return data


def validation_problems(
    error: ValidationError, prefix: str = "", whole: str = "body"
) -> list[Problem]:
    """pydantic's complaints as problems: each names where (dotted, after ``prefix``;
    ``whole`` when it is about the input as a whole) and says ``<where>: <message>``."""
    problems = []
    for issue in error.errors():
        where = prefix + ".".join(map(str, issue["loc"])) if issue["loc"] else prefix or whole
        problems.append(Problem(where, f"{where}: {issue['msg']}"))
    return problems


@dataclass
class PowerXError(Exception):
    """Base of all user-facing errors."""

    code: str
    message: str
    fix: str | None = None
    status: int = 400
    problems: list[Problem] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.fix:
            body["fix"] = self.fix
        if self.problems:
            body["problems"] = [p.to_dict() for p in self.problems]
        body.update(self.details)
        return body

    @classmethod
    def from_dict(cls, body: dict[str, Any], status: int = 400) -> PowerXError:
        """Rebuild an error from a JSON body the simulator sent."""
        known = {"error", "message", "fix", "problems"}
        return cls(
            code=str(body.get("error", "unknown_error")),
            message=str(body.get("message", "The simulator reported an error.")),
            fix=body.get("fix"),
            status=status,
            problems=[
                Problem(p.get("where", "?"), p.get("message", ""), p.get("fix"))
                for p in body.get("problems", [])
                if isinstance(p, dict)
            ],
            details={k: v for k, v in body.items() if k not in known},
        )


_STORAGE_ERRNOS = {
    errno.ENOSPC: "storage_full",
    errno.EDQUOT: "storage_full",
    errno.EROFS: "storage_read_only",
}


def storage_error(exc: OSError) -> PowerXError | None:
    """A full or read-only disk under the state folder, as a user error (None otherwise).

    Nothing is half-written when this happens: artefacts and pointers are written to a
    temporary file and renamed, SQLite rolls back, so what served before still serves.
    """
    code = _STORAGE_ERRNOS.get(exc.errno or 0)
    if code is None:
        return None
    where = f" ({exc.filename})" if exc.filename else ""
    if code == "storage_full":
        return PowerXError(
            code,
            f"The disk holding the PowerX state folder is full{where}.",
            "free some space (or `powerx host cache clear`), then save again; "
            "what served before keeps serving.",
            status=507,
        )
    return PowerXError(
        code,
        f"The PowerX state folder is on a read-only file system{where}.",
        "set POWERX_STATE_DIR to a writable folder, or make this one writable.",
        status=507,
    )
