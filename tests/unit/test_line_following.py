"""Following a breakpoint's line through an edit: by its text, its function and the lines
around it; unverified with a reason when that is not certain."""

from __future__ import annotations

from pathlib import Path

from powerx.debug.breakpoints import BreakpointSet, BreakpointSpec
from powerx.debug.line_following import enclosing_function, follow

HANDLER = """\
def home(request):
    name = request.query_params.get("name", "world")
    message = f"hello {name}"
    return message
"""
RETURN_LINE = 4


def test_a_copy_renamed_above_the_function_does_not_take_its_breakpoint() -> None:
    # The real one is edited too, so a diff's longest unchanged block is the copy's body.
    edited = HANDLER.replace("    return message", "    message += '!'\n    return message")
    copied = HANDLER.replace("def home(", "def home_unused(") + "\n\n" + edited
    new = copied.splitlines()
    followed = follow(HANDLER.splitlines(), new, RETURN_LINE)
    assert followed.line == RETURN_LINE + 7  # the real `home`, below the copy
    assert enclosing_function(new, followed.line) == "home"


def test_a_duplicate_with_the_same_name_leaves_the_breakpoint_unverified() -> None:
    doubled = (HANDLER + "\n\n" + HANDLER).splitlines()
    followed = follow(HANDLER.splitlines(), doubled, RETURN_LINE)
    assert followed.line is None
    assert "appears 2 times (lines 4, 10)" in str(followed.reason)


def test_moved_code_and_lines_edited_in_place_are_still_followed() -> None:
    old = HANDLER.splitlines()
    assert follow(old, ["# a comment", "", *old], RETURN_LINE).line == RETURN_LINE + 2
    edited = [line.replace("return message", "return message.upper()") for line in old]
    assert follow(old, edited, RETURN_LINE).line == RETURN_LINE
    assert follow(old, old[:3], RETURN_LINE).reason == "line removed"


def test_typescript_methods_are_functions_too() -> None:
    source = [
        "export default {",
        "  async fetch(request: Request, env: Env): Promise<Response> {",
        "    const url = new URL(request.url);",
        "    if (url.pathname === '/') {",
        "      return json({ ok: true });",
        "    }",
        "  },",
        "};",
    ]
    assert enclosing_function(source, 5) == "fetch"


def test_an_uncertain_breakpoint_is_kept_unverified_and_set_again_clears_it(tmp_path: Path) -> None:
    breakpoints = BreakpointSet("p", tmp_path / "bp.json")
    breakpoints.add(BreakpointSpec(file="app.py", line=RETURN_LINE))
    notes = breakpoints.follow_edit("app.py", HANDLER, HANDLER + "\n\n" + HANDLER)
    [bp] = breakpoints.items
    assert bp.line == RETURN_LINE and bp.verified is False
    assert bp.message is not None and bp.message.startswith("uncertain after an edit")
    assert "unverified" in notes[0]
    again = breakpoints.add(BreakpointSpec(file="app.py", line=RETURN_LINE))
    assert again.id == bp.id and again.message is None
