"""What the request inspector shows: a record masked and serialised, with the plugin's
log lines for it.

Headers: ``Authorization``, ``Cookie``, ``Set-Cookie``, ``X-PowerX-CTX*`` and the host
grant never appear raw (a bearer keeps its scheme word), nor does any header whose name
is sensitive (``X-Api-Key``); every other value goes through the log masking. Bodies are
masked by key when they are JSON, as text otherwise, then cut to the preview size.

Log lines are matched to a request when it is read, from the log ring:

- ``id``: the line names the request's id (a JSON field such as ``request_id``, or the
  text: a plugin that logs its ``X-Request-Id``), or the simulator tagged it (its access
  line);
- ``time``: the line came from the generation that served the request while it was being
  served (until the next request to that generation began, at most ``lag_s`` after the
  answer: a line can reach the simulator just after the answer it was printed before),
  and names no other request. Two requests served at once share such lines.
"""

from __future__ import annotations

import bisect
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from powerx.observe.events import Event
from powerx.observe.masking import MASK, is_sensitive_key, mask_text, mask_value
from powerx.observe.requests import HeaderPairs, RequestRecord

__all__ = [
    "LOG_LAG_S",
    "detail",
    "logs_for",
    "mask_body",
    "mask_headers",
    "summary",
]

LOG_LAG_S = 0.25
# An id-naming line may come a little later than the time window allows.
_ID_GRACE_S = 5.0
_CREDENTIAL_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-powerx-grant",
        "x-powerx-ctx",
        "x-powerx-ctx-sig",
    }
)


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _mask_header(name: str, value: str) -> str:
    lowered = name.lower()
    if lowered in _CREDENTIAL_HEADERS or lowered.startswith("x-powerx-ctx"):
        scheme, _, rest = value.partition(" ")
        if rest and lowered in {"authorization", "proxy-authorization"}:
            return f"{scheme} {MASK}"
        return MASK
    if is_sensitive_key(name):
        return MASK if value else value
    return mask_text(value)


def mask_headers(headers: HeaderPairs | Mapping[str, str]) -> list[list[str]]:
    """``[[name, value], ...]`` with every credential masked (names lower-case)."""
    pairs: Iterable[tuple[str | bytes, str | bytes]] = (
        headers.items() if isinstance(headers, Mapping) else headers
    )
    shown = []
    for raw_name, raw_value in pairs:
        name = _text(raw_name).lower()
        shown.append([name, _mask_header(name, _text(raw_value))])
    return shown


def _content_type(headers: HeaderPairs | Mapping[str, str]) -> str:
    pairs: Iterable[tuple[str | bytes, str | bytes]] = (
        headers.items() if isinstance(headers, Mapping) else headers
    )
    for name, value in pairs:
        if _text(name).lower() == "content-type":
            return _text(value).lower()
    return ""


def mask_body(body: bytes, content_type: str, limit: int) -> dict[str, Any]:
    """A preview of ``body``: ``{text, truncated, binary}``, masked, at most ``limit``
    characters of text."""
    if not body:
        return {"text": "", "truncated": False, "binary": False}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return {"text": f"<{len(body)} bytes of binary data>", "truncated": False, "binary": True}
    masked: str | None = None
    if "json" in content_type or text.lstrip()[:1] in {"{", "["}:
        try:
            masked = json.dumps(mask_value(json.loads(text)), ensure_ascii=False, indent=2)
        except (ValueError, RecursionError):
            masked = None  # cut short at the replay cap, or not JSON after all: as text
    if masked is None:
        masked = mask_text(text)
    return {"text": masked[:limit], "truncated": len(masked) > limit, "binary": False}


def summary(record: RequestRecord) -> dict[str, Any]:
    """One line's worth: what was asked, as whom, what came back, how fast."""
    return {
        "id": record.id,
        "ts": record.ts,
        "plugin": record.plugin,
        "method": record.method,
        "path": mask_text(record.path),
        "query": mask_text(record.query),
        "identity": record.identity,
        "tenant": record.tenant,
        "generation": record.generation,
        "status": record.status,
        "error": record.error,
        "duration_ms": _round(record.duration_ms),
        "upstream_ms": _round(record.upstream_ms),
        "held": record.held,
        "held_ms": round(record.held_ms, 2),
        "replay_of": record.replay_of,
        "replayable": record.replayable,
        "done": record.done,
        "host_calls": len(record.host_calls),
    }


def detail(
    record: RequestRecord,
    logs: Sequence[dict[str, Any]],
    preview_chars: int = 4096,
) -> dict[str, Any]:
    """Everything about one request, masked, with its log lines (see ``logs_for``)."""
    request_type = _content_type(record.incoming)
    return {
        **summary(record),
        "request": {
            "headers": mask_headers(record.sent_headers or record.incoming),
            "body": mask_body(record.body, request_type, preview_chars),
            "body_size": record.body_size,
        },
        "response": {
            "status": record.status,
            "headers": mask_headers(record.response_headers),
            "body": mask_body(
                record.response_preview, _content_type(record.response_headers), preview_chars
            ),
            "body_size": record.response_size,
        },
        "host_calls": [_host_call(asdict(call)) for call in record.host_calls],
        "logs": list(logs),
    }


def _host_call(call: dict[str, Any]) -> dict[str, Any]:
    call["path"] = mask_text(call["path"])
    call["duration_ms"] = _round(call["duration_ms"])
    return call


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


# -- log lines ---------------------------------------------------------------------------


def _names(event: Event, needle: str) -> bool:
    """Whether the log record names ``needle`` (an id, or a run's id prefix)."""
    data = event.data
    if data.get("request_id") is not None:
        return str(data["request_id"]).startswith(needle)
    if needle in str(data.get("message", "")):
        return True
    fields = data.get("fields")
    return bool(fields) and needle in json.dumps(fields, default=str)


def logs_for(
    records: Sequence[RequestRecord],
    events: Sequence[Event],
    run: str,
    lag_s: float = LOG_LAG_S,
    now: float | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Each record's log lines (by id), from the log ring's ``events``; ``run`` is the
    inspector's run prefix, by which a line naming another request is recognised."""
    now = time.time() if now is None else now
    by_generation: dict[tuple[str, int], list[Event]] = {}
    for event in events:
        generation = event.data.get("generation")
        if isinstance(generation, int):
            by_generation.setdefault((str(event.data.get("plugin")), generation), []).append(event)
    starts: dict[tuple[str, int], list[float]] = {}
    stamps: dict[tuple[str, int], list[float]] = {}
    found: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        found[record.id] = []
        if record.generation is None:
            continue
        key = (record.plugin, record.generation)
        lines = by_generation.get(key)
        if not lines:
            continue
        if key not in starts:
            starts[key] = sorted(r.ts for r in records if (r.plugin, r.generation) == key)
            stamps[key] = [float(e.data.get("ts", e.ts)) for e in lines]
        ended = record.finished_ts if record.finished_ts is not None else now
        window_end = ended + lag_s
        following = starts[key]
        after = bisect.bisect_left(following, ended)
        if after < len(following):  # the next request it served began then
            window_end = min(window_end, max(following[after], ended))
        times = stamps[key]
        own, other = record.id, f"{run}-"
        for index in range(
            bisect.bisect_left(times, record.ts), bisect.bisect_right(times, ended + _ID_GRACE_S)
        ):
            event = lines[index]
            if _names(event, own) and _exact(event, own):
                found[record.id].append({**event.data, "match": "id"})
            elif times[index] <= window_end and not _names(event, other):
                found[record.id].append({**event.data, "match": "time"})
    return found


def _exact(event: Event, request_id: str) -> bool:
    """``_names`` matches prefixes ("ab-1" in "ab-12"): check the id stands alone."""
    data = event.data
    if data.get("request_id") is not None:
        return str(data["request_id"]) == request_id
    text = str(data.get("message", "")) + json.dumps(data.get("fields") or {}, default=str)
    start = text.find(request_id)
    while start >= 0:
        end = start + len(request_id)
        if end == len(text) or not text[end].isdigit():
            return True
        start = text.find(request_id, end)
    return False
