"""The page a browser gets from a plugin whose last reload failed.

The previous generation still serves, so an API client keeps getting its answers (with
``x-powerx-stale``). A person looking at a page of the plugin would not notice that the
code behind it is older than the code on disk; a page they ask for is replaced by this
one, naming why the reload failed and what to do, and it reloads itself every two
seconds, so the fixed page appears on its own after the next good save.
"""

from __future__ import annotations

from html import escape

from powerx.host.reload_failures import ReloadFailure

REFRESH_S = 2
# The page shows plugin output (a compiler's message): nothing in it may run.
CSP = "default-src 'none'; style-src 'unsafe-inline'"


def wants_page(accept: str | None, content_type: str | None) -> bool:
    """A browser asking for a page (``Accept: text/html`` first), and getting one."""
    first = (accept or "").split(",", 1)[0].strip().lower()
    return first.startswith("text/html") and (content_type or "").lower().startswith("text/html")


def stale_page(plugin: str, failure: ReloadFailure, generation: int) -> str:
    fix = f"<p><b>Fix:</b> {escape(failure.fix)}</p>" if failure.fix else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_S}">
<title>Reload failed: {escape(plugin)}</title>
<style>
body {{ font: 15px/1.5 system-ui, sans-serif; margin: 3em auto; max-width: 60em; color: #222 }}
h1 {{ color: #b00020; font-size: 1.4em }}
pre {{ background: #fff4f4; border-left: 4px solid #b00020; padding: 1em; white-space: pre-wrap }}
.note {{ color: #666 }}
</style></head><body>
<h1 id="reload-failed">Reload failed: {escape(plugin)}</h1>
<p><code>{escape(failure.code)}</code></p>
<pre id="reason">{escape(failure.message)}</pre>
{fix}
<p class="note">Serving generation {generation}, which is older than your last save. API
clients still get its answers; this page reloads every {REFRESH_S} s and shows the plugin
again once a save reloads cleanly. <a href="/dashboard">Dashboard</a></p>
</body></html>
"""
