"""The Hot Reload Dashboard: one static page the simulator serves at ``/dashboard``.

The page (``index.html`` next to this module) is plain HTML with inline CSS and script and
loads nothing from anywhere else, so it works offline. It holds no data: once open, the
browser fetches status, reload telemetry, alerts, the audit trail and the requests to
plugins from the internal debug API and follows its event streams (events, logs and
requests), authenticated by the HttpOnly cookie the simulator sets when the developer opens
the one-time link that ``powerx host status`` prints. Nothing is rendered server-side, and
the page writes every value with ``textContent``, because plugin logs are untrusted.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib.resources import files

__all__ = ["dashboard_html", "render_dashboard"]


@cache
def dashboard_html() -> str:
    """The page's text, read once from the installed package."""
    return files("powerx.dashboard").joinpath("index.html").read_text(encoding="utf-8")


def render_dashboard(status: Mapping[str, object]) -> str:
    # Deprecated: the page no longer renders status server-side; serve dashboard_html().
    # Kept only until powerx.host.app switches its import.
    return dashboard_html()
