"""The simulator's dashboard page (server-rendered; no script needed to read it)."""

from __future__ import annotations

import html
from importlib.resources import files
from typing import Any


def render_dashboard(status: dict[str, Any]) -> str:
    template = files("powerx.dashboard").joinpath("index.html").read_text(encoding="utf-8")
    rows = []
    for plugin in status["plugins"]:
        digest = (plugin["digest"] or "")[:12]
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(value))}</td>"
                for value in (
                    plugin["id"],
                    plugin["version"],
                    plugin["runtime"],
                    plugin["state"],
                    plugin["generation"],
                    digest,
                    plugin["pid"],
                )
            )
            + f'<td><a href="/plugins/{html.escape(plugin["id"])}/">open</a></td></tr>'
        )
    host = status["host"]
    return (
        template.replace("{{image}}", html.escape(host["image"]))
        .replace("{{api_version}}", html.escape(host["api_version"]))
        .replace("{{tenant}}", html.escape(host["tenant"]))
        .replace("{{rows}}", "\n".join(rows) or '<tr><td colspan="8">no plugins</td></tr>')
    )
