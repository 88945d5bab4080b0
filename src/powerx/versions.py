"""Host API version ranges as plugins declare them in ``host.api``.

Accepted forms (combinable with spaces or commas; alternatives with ``||``):
``>=2.3 <3``, ``^2.3``, ``~2.4``, ``2.4`` (exact), ``=2.4``/``==2.4``, ``2.x``, ``*``.

The comparisons themselves are packaging's; only the npm-style sugar (``^``, ``~``,
``x``) is translated here, because no maintained library parses npm ranges over
two-part versions such as host API ``2.4``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

_COMPARATOR = re.compile(r"^(>=|<=|>|<|==|=|\^|~)?\s*v?(\d+(?:\.(?:\d+|x|\*))*)$")


class RangeSyntaxError(ValueError):
    """The text is not a version range we understand."""


def _parts(text: str) -> list[str]:
    return text.split(".")


def _next_major(parts: list[int]) -> str:
    return f"{parts[0] + 1}"


def _translate(op: str, version: str) -> list[str]:
    raw = _parts(version)
    wildcard = next((i for i, p in enumerate(raw) if p in {"x", "*"}), None)
    if wildcard is not None:
        if op not in {"", "=", "=="}:
            raise RangeSyntaxError(f"wildcard '{version}' cannot follow '{op}'")
        fixed = [int(p) for p in raw[:wildcard]]
        if not fixed:
            return []
        lower = ".".join(str(p) for p in fixed)
        upper_parts = [*fixed[:-1], fixed[-1] + 1]
        return [f">={lower}", f"<{'.'.join(str(p) for p in upper_parts)}"]
    nums = [int(p) for p in raw]
    if op == "^":
        # ^2.3 -> >=2.3 <3 ; ^0.4 -> >=0.4 <0.5 (npm semantics for 0.x)
        if nums[0] == 0 and len(nums) > 1:
            return [f">={version}", f"<0.{nums[1] + 1}"]
        return [f">={version}", f"<{_next_major(nums)}"]
    if op == "~":
        # ~2.4 -> >=2.4 <2.5 ; ~2 -> >=2 <3
        if len(nums) == 1:
            return [f">={version}", f"<{_next_major(nums)}"]
        return [f">={version}", f"<{nums[0]}.{nums[1] + 1}"]
    if op in {"", "=", "=="}:
        return [f"=={version}"]
    return [f"{op}{version}"]


@dataclass(frozen=True)
class VersionRange:
    """A parsed ``host.api`` range: one or more alternatives of comparator sets."""

    text: str
    alternatives: tuple[SpecifierSet, ...]

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        stripped = text.strip()
        if not stripped:
            raise RangeSyntaxError("the range is empty")
        alternatives = []
        for alternative in stripped.split("||"):
            specs: list[str] = []
            tokens = re.findall(
                r"(?:>=|<=|>|<|==|=|\^|~)?\s*[^\s,]+", alternative.replace(",", " ")
            )
            if not tokens:
                raise RangeSyntaxError(f"'{alternative.strip()}' has no comparator")
            for token in tokens:
                token = token.strip()
                if token == "*":
                    continue
                match = _COMPARATOR.match(token)
                if not match:
                    raise RangeSyntaxError(f"'{token}' is not a comparator like '>=2.3' or '^2.3'")
                specs.extend(_translate(match.group(1) or "", match.group(2)))
            try:
                alternatives.append(SpecifierSet(",".join(specs)))
            except InvalidSpecifier as exc:  # pragma: no cover - guarded by the regex
                raise RangeSyntaxError(str(exc)) from exc
        return cls(text=stripped, alternatives=tuple(alternatives))

    def admits(self, version: str) -> bool:
        try:
            parsed = Version(version)
        except InvalidVersion as exc:
            raise RangeSyntaxError(f"'{version}' is not a version") from exc
        return any(spec.contains(parsed, prereleases=True) for spec in self.alternatives)

    def suggest_for(self, version: str) -> str:
        """A range a plugin could declare to run on host API ``version``."""
        major = Version(version).major
        return f">={version} <{major + 1}"
