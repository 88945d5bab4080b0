"""Every error code is defined once, in powerx.error_codes, and every one defined is used:
the stable HTTP and CLI contract stays in one place."""

from __future__ import annotations

import re
from pathlib import Path

from powerx.error_codes import ErrorCode

SRC = Path(__file__).resolve().parents[2] / "src" / "powerx"
# Also a code built in an f-string (f"invalid_{name}"): the registry would not list it.
RAISED_WITH_TEXT = re.compile(r'\b(PowerXError|ManifestError)\(\s*(code\s*=\s*)?f?"([a-z0-9_{}]+)"')
USED = re.compile(r"ErrorCode\.([A-Z0-9_]+)")


def sources() -> dict[Path, str]:
    return {
        path: path.read_text(encoding="utf-8")
        for path in SRC.rglob("*.py")
        if "scaffold/templates" not in path.as_posix()
    }


def test_no_error_is_raised_with_a_code_written_as_text() -> None:
    found = [
        f"{path.relative_to(SRC)}: {match.group(3)}"
        for path, text in sources().items()
        for match in RAISED_WITH_TEXT.finditer(text)
    ]
    assert found == [], "use ErrorCode.<NAME> (add the code to powerx/error_codes.py)"


def test_every_code_defined_is_used_and_named_after_its_value() -> None:
    used = {name for text in sources().values() for name in USED.findall(text)}
    defined = {code.name for code in ErrorCode}
    assert sorted(defined - used) == [], "remove codes nothing raises"
    assert sorted(used - defined) == []
    assert all(code.name == code.value.upper() for code in ErrorCode)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", code.value) for code in ErrorCode)
