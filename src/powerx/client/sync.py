"""The CLI's calls to the running simulator (one request, or an event stream), with the
developer credential."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, connect_sse

from powerx.auth import require_credential
from powerx.client.answers import NOT_RUNNING_FIX, decoded, not_answering
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.running import find_host_info


def running_url() -> str:
    info = find_host_info()
    if info is None:
        raise PowerXError(
            ErrorCode.HOST_NOT_RUNNING, "No simulator is running for this project.", NOT_RUNNING_FIX
        )
    return str(info["url"])


def request(
    method: str,
    path: str,
    timeout: float = 10.0,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
) -> Any:
    url = running_url()
    credential = require_credential()
    try:
        response = httpx.request(
            method,
            url + path,
            timeout=timeout,
            trust_env=False,
            verify=url.startswith("https://"),
            json=json_body,
            headers={"authorization": f"Bearer {credential.token}", **(headers or {})},
        )
    except httpx.ConnectError:
        raise not_answering(url) from None
    except httpx.HTTPError as exc:
        raise PowerXError(
            ErrorCode.HOST_UNREACHABLE,
            f"Talking to the simulator at {url} failed: {exc}.",
            "retry; if it persists, restart the simulator.",
        ) from None
    return decoded(response)


def stream(
    path: str, params: dict[str, str], headers: dict[str, str] | None = None
) -> Iterator[ServerSentEvent]:
    """Follow an SSE endpoint of the running simulator until it or the user stops."""
    url = running_url()
    credential = require_credential()
    try:
        with (
            httpx.Client(
                trust_env=False,
                verify=url.startswith("https://"),
                timeout=httpx.Timeout(10.0, read=None),
                headers={"authorization": f"Bearer {credential.token}", **(headers or {})},
            ) as session,
            connect_sse(session, "GET", url + path, params=params) as source,
        ):
            if source.response.status_code >= 400:
                source.response.read()
                decoded(source.response)
            yield from source.iter_sse()
    except httpx.ConnectError:
        raise not_answering(url) from None
    except httpx.HTTPError:
        return  # the simulator stopped while we followed it


def stop(wait_s: float = 10.0) -> str:
    """Ask the simulator to stop and wait until it has (its host file disappears)."""
    url = running_url()
    request("POST", "/internal/debug/shutdown")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if find_host_info() is None:
            return url
        time.sleep(0.05)
    raise PowerXError(
        ErrorCode.HOST_STOP_TIMEOUT,
        f"The simulator at {url} did not stop within {wait_s:g} s.",
        "stop its process (Ctrl-C in its terminal), then retry.",
    )
