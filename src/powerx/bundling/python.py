"""Python plugins: a compile check of the sources, then their files as artefact members."""

from __future__ import annotations

from pathlib import Path

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError, Problem


def compile_check(root: Path, files: list[Path]) -> None:
    """Catch syntax errors before anything starts; name every broken file and line."""
    problems: list[Problem] = []
    for relative in files:
        if relative.suffix != ".py":
            continue
        source = (root / relative).read_bytes()
        try:
            compile(source, str(relative), "exec", dont_inherit=True)
        except SyntaxError as exc:
            problems.append(
                Problem(f"{relative}:{exc.lineno}", f"{relative}:{exc.lineno}: {exc.msg}")
            )
        except ValueError as exc:  # e.g. null bytes
            problems.append(Problem(str(relative), f"{relative}: {exc}"))
    if problems:
        first = problems[0]
        raise PowerXError(
            ErrorCode.BUILD_FAILED,
            f"Syntax error in {first.message}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            "fix the code at that line and save again.",
            problems=problems,
            details={
                "file": first.where.rsplit(":", 1)[0],
                "line": int(first.where.rsplit(":", 1)[1]) if ":" in first.where else None,
            },
        )
