"""The Hot Reload Dashboard: one static page; its script fetches data with the
developer's dashboard cookie and follows the event and log streams."""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def dashboard_html() -> str:
    return files("powerx.dashboard").joinpath("index.html").read_text(encoding="utf-8")
