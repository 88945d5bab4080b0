"""Hit counts for breakpoints: the forms debugpy reads, checked before anything is set."""

from __future__ import annotations

import pytest

from powerx.debug.breakpoints import parse_hit_condition, parse_specs
from powerx.errors import PowerXError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", ("==", 3)),
        (" == 3 ", ("==", 3)),
        (">=10", (">=", 10)),
        ("> 2", (">", 2)),
        ("<4", ("<", 4)),
        ("<=4", ("<=", 4)),
        ("%2", ("%", 2)),
    ],
)
def test_counts_are_read_as_debugpy_reads_them(text: str, expected: tuple[str, int]) -> None:
    assert parse_hit_condition(text) == expected


@pytest.mark.parametrize("text", ["", "x", "> x", "%0", "=3", "!=3", "3.5", "-1", ">= 2 and x"])
def test_anything_else_is_not_a_hit_count(text: str) -> None:
    assert parse_hit_condition(text) is None


def test_a_bad_hit_count_is_refused_with_the_forms_that_work() -> None:
    with pytest.raises(PowerXError) as raised:
        parse_specs(
            {
                "breakpoints": [
                    {"file": "app.py", "line": 3, "hit_condition": "%2"},
                    {"file": "app.py", "line": 4, "hit_condition": "often"},
                ]
            }
        )
    [problem] = raised.value.problems
    assert problem.where == "breakpoints[1].hit_condition"
    assert "'often'" in problem.message and ">=3" in problem.message
