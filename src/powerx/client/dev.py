"""The dev loop's client for the simulator's ``/internal/debug/*`` endpoints (async).

Connection failures are retried with exponential backoff, a bounded number of times.
Retrying a push is safe: the simulator is idempotent by artefact digest.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from powerx.bundling import Artefact
from powerx.client.answers import decoded
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError

RETRIES = 5
BACKOFF_FIRST_S = 0.05
PENDING_TIMEOUT_S = 2.0


# In the simulator's own process (`host start --watch`): note a pending reload (plugin,
# pending, the files it covers) and an armed or disarmed watcher (plugin, armed, folders,
# mode) directly.
LocalPending = Callable[[str, bool, Sequence[str]], None]
LocalWatch = Callable[[str, bool, Sequence[str], str], None]
# ... and a type check's report (reload/type_checks.py), as the HTTP note carries it.
LocalTypeCheck = Callable[[dict[str, Any]], None]


class SimulatorClient:
    def __init__(
        self,
        url: str,
        token: str,
        timeout_s: float = 60.0,
        local_pending: LocalPending | None = None,
        local_watch: LocalWatch | None = None,
        local_type_check: LocalTypeCheck | None = None,
    ) -> None:
        self.url = url
        self._local_pending = local_pending
        self._local_watch = local_watch
        self._local_type_check = local_type_check
        self._client = httpx.AsyncClient(
            base_url=url,
            timeout=httpx.Timeout(timeout_s, connect=5.0),
            trust_env=False,
            verify=url.startswith("https://"),
            headers={"authorization": f"Bearer {token}"},
        )

    async def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        delay = BACKOFF_FIRST_S
        for attempt in range(RETRIES + 1):
            try:
                response = await self._client.request(method, path, **kwargs)
                break
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
                if attempt == RETRIES:
                    raise PowerXError(
                        ErrorCode.HOST_UNREACHABLE,
                        f"The simulator at {self.url} did not answer after {RETRIES + 1} tries "
                        f"({type(exc).__name__}).",
                        "check that `powerx host start` is still running.",
                    ) from None
                await asyncio.sleep(delay)
                delay *= 2
        return decoded(response)

    async def push(self, artefact: Artefact) -> dict[str, Any]:
        """``POST /internal/debug/hot-reload`` with the archive; returns generation + timings."""
        result: dict[str, Any] = await self._send(
            "POST",
            "/internal/debug/hot-reload",
            content=artefact.data,
            headers={
                "content-type": "application/x-tar",
                "x-powerx-digest": artefact.digest,
                "x-powerx-build-ms": f"{artefact.build_ms:.3f}",
                "x-powerx-install-ms": f"{artefact.install_ms:.3f}",
                "x-powerx-source": str(artefact.source_dir),
                "x-powerx-plugin": artefact.manifest.id,
            },
        )
        return result

    async def reload_pending(self, plugin: str, pending: bool, changed: Sequence[str] = ()) -> bool:
        """Tell the simulator a reload of ``plugin`` covering the files ``changed`` is on
        its way (it then holds the plugin's requests for the new code) or, after a failed
        build, will not come. One try, no error: this only decides when requests are
        answered, never by what.

        In the simulator's process this is a method call: as an HTTP request it would
        queue behind the very requests it is meant to hold (~1 ms of a Node reload)."""
        if self._local_pending is not None:
            try:
                self._local_pending(plugin, pending, changed)
            except PowerXError:
                return False
            return True
        return await self._note(
            "/internal/debug/hot-reload/pending",
            {"plugin": plugin, "pending": pending, "changed": list(changed)},
        )

    async def watch_armed(
        self, plugin: str, armed: bool, folders: Sequence[str] = (), mode: str = ""
    ) -> bool:
        """Tell the simulator the dev loop's watcher for ``plugin`` is armed (a save from
        now on reloads) over the root and ``folders``, or no longer watches. One try, no
        error: the simulator only shows it (status, events)."""
        if self._local_watch is not None:
            self._local_watch(plugin, armed, folders, mode)
            return True
        return await self._note(
            "/internal/debug/hot-reload/watch",
            {"plugin": plugin, "armed": armed, "folders": list(folders), "mode": mode},
        )

    async def type_checked(self, report: dict[str, Any]) -> bool:
        """Tell the simulator what a plugin's type check found (``TypeCheckReport``): it
        shows the errors as warnings (status, events, dashboard) until a clean run. One
        try, no error: this only informs."""
        if self._local_type_check is not None:
            try:
                self._local_type_check(report)
            except PowerXError:
                return False
            return True
        return await self._note("/internal/debug/hot-reload/type-check", report)

    async def _note(self, path: str, body: dict[str, object]) -> bool:
        try:
            response = await self._client.post(path, json=body, timeout=PENDING_TIMEOUT_S)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def report(self, reports: list[dict[str, Any]]) -> None:
        """Client-side telemetry (``POST /internal/debug/telemetry``)."""
        await self._send("POST", "/internal/debug/telemetry", json=reports)

    async def alerts(self) -> list[dict[str, Any]]:
        result: dict[str, Any] = await self._send("GET", "/internal/debug/alerts")
        alerts: list[dict[str, Any]] = result.get("alerts", [])
        return alerts

    async def events(self, kind: str) -> AsyncIterator[dict[str, Any]]:
        """The simulator's events of type ``kind`` from now on, as they happen
        (``/internal/debug/events``); ends quietly when the simulator goes away."""
        try:
            async with aconnect_sse(
                self._client,
                "GET",
                "/internal/debug/events",
                params={"type": kind},
                timeout=httpx.Timeout(10.0, read=None),
            ) as source:
                if source.response.status_code >= 400:
                    return  # observability off, or a credential that may not read events
                async for event in source.aiter_sse():
                    if event.event == kind and event.data:
                        yield json.loads(event.data)
        except httpx.HTTPError:
            return

    async def status(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._send("GET", "/internal/debug/status")
        return result

    async def dashboard_url(self) -> str:
        result: dict[str, Any] = await self._send("GET", "/internal/debug/dashboard-link")
        return str(result["url"])

    async def restart(self, plugin: str) -> dict[str, Any]:
        """A new generation of the serving code (same artefact), as `host start`'s ``r``."""
        result: dict[str, Any] = await self._send(
            "POST", f"/internal/debug/plugins/{plugin}/restart"
        )
        return result

    async def close(self) -> None:
        await self._client.aclose()
