"""Where a breakpoint's line went after an edit, or why that is not certain.

A diff alone is fooled by duplicated code: copy a function above itself and rename the
copy, and the diff matches the old function to the copy, which is never called. So a line
is followed by what it is, not only by where the diff puts it:

1. the same text (stripped), in a function of the same name (the nearest ``def``,
   ``function``, method or ``const f =`` above it, less indented);
2. one such place: there. Several: the one whose surrounding lines (3, then 10 either
   side) match best, and only if exactly one is best;
3. none (the line itself was edited): the diff's place, if it is still in that function.

Anything else is uncertain: the breakpoint stays where it was, unverified, with the
reason, and is not set until the user sets it again. Moving it to a guess would stop the
plugin somewhere the developer did not choose, or never.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Followed", "follow"]

_FUNCTION = re.compile(
    r"^\s*(?:export\s+)?(?:default\s+)?(?:async\s+)?"
    r"(?:def\s+(?P<py>\w+)"
    r"|function\s*\*?\s*(?P<js>\w+)"
    r"|(?:const|let|var)\s+(?P<bound>\w+)\s*=\s*(?:async\s*)?(?:function|\(|\w+\s*=>)"
    r"|class\s+(?P<cls>\w+)"
    r"|(?P<method>(?!if\b|for\b|while\b|switch\b|catch\b|return\b)\w+)\s*\([^;]*\)\s*(?::[^{;]*)?\{\s*$)"
)
_NEAR, _FAR = 3, 10


@dataclass(frozen=True)
class Followed:
    line: int | None  # 1-based, in the new text; None: not followed
    reason: str | None = None  # why not (None when followed)


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip())


def enclosing_function(lines: Sequence[str], line: int) -> str | None:
    """The name of the function (or class) that holds 1-based ``line``."""
    index = line - 1
    if not 0 <= index < len(lines):
        return None
    own = _indent(lines[index]) if lines[index].strip() else 1 << 30
    for above in range(index - 1, -1, -1):
        text = lines[above]
        if not text.strip() or _indent(text) >= own:
            continue
        found = _FUNCTION.match(text)
        if found is not None:
            return next(name for name in found.groups() if name)
        own = _indent(text)  # a block (if, for, with ...) inside it: look further out
    return None


def _context(old: Sequence[str], new: Sequence[str], at_old: int, at_new: int, span: int) -> int:
    """How many of the ``span`` lines either side are the same in both texts."""
    same = 0
    for offset in [*range(-span, 0), *range(1, span + 1)]:
        a, b = at_old + offset, at_new + offset
        if 0 <= a < len(old) and 0 <= b < len(new) and old[a].strip() == new[b].strip():
            same += 1
    return same


def _by_diff(old: Sequence[str], new: Sequence[str], line: int) -> int | None:
    matcher = difflib.SequenceMatcher(a=list(old), b=list(new), autojunk=False)
    index = line - 1
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if not a0 <= index < a1:
            continue
        if tag == "equal":
            return b0 + (index - a0) + 1
        if tag == "replace" and index - a0 < b1 - b0:
            return b0 + (index - a0) + 1  # edited in place: the breakpoint stays on it
        return None
    return None


def follow(old: Sequence[str], new: Sequence[str], line: int) -> Followed:
    """Where 1-based ``line`` of ``old`` is in ``new``."""
    guess = _by_diff(old, new, line)
    if not 1 <= line <= len(old) or not old[line - 1].strip():
        return Followed(guess) if guess else Followed(None, "line removed")
    text, function = old[line - 1].strip(), enclosing_function(old, line)
    places = [
        number
        for number, candidate in enumerate(new, start=1)
        if candidate.strip() == text and enclosing_function(new, number) == function
    ]
    if len(places) == 1:
        return Followed(places[0])
    if not places:
        if guess is not None and enclosing_function(new, guess) == function:
            return Followed(guess)
        if guess is None:
            return Followed(None, "line removed")
        where = f"function {function}" if function else "the same place"
        return Followed(
            None, f"uncertain after an edit: line {line} changed and is no longer in {where}"
        )
    for span in (_NEAR, _FAR):
        scores = {place: _context(old, new, line - 1, place - 1, span) for place in places}
        best = max(scores.values())
        places = [place for place in places if scores[place] == best]
        if len(places) == 1:
            return Followed(places[0])
    shown = ", ".join(str(place) for place in places[:5])
    inside = f" in function {function}" if function else ""
    return Followed(
        None,
        f"uncertain after an edit: the code of line {line}{inside} now appears "
        f"{len(places)} times (lines {shown})",
    )
