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
import re
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


def _named(event: Event, ids: re.Pattern[str]) -> set[str]:
    """The request ids of this run a log record names (its ``request_id``, text, fields)."""
    data = event.data
    text = f"{data.get('request_id') or ''} {data.get('message', '')}"
    fields = data.get("fields")
    if fields:
        text += json.dumps(fields, default=str)
    return set(ids.findall(text))


def logs_for(
    records: Sequence[RequestRecord],
    events: Sequence[Event],
    run: str,
    lag_s: float = LOG_LAG_S,
    now: float | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Each record's log lines (by id), from the log ring's ``events``; ``run`` is the
    inspector's run prefix, by which the ids lines name are found. Each line is looked at
    once; a record then takes the lines naming it and the unnamed ones of its window."""
    now = time.time() if now is None else now
    if records:  # the ring is in time order: lines older than every request are no one's
        events = events[bisect.bisect_left(events, min(r.ts for r in records), key=_stamp) :]
    ids = re.compile(rf"\b{re.escape(run)}-\d+\b")
    by_id: dict[str, list[Event]] = {}
    unnamed: dict[tuple[str, int], list[Event]] = {}
    for event in events:
        generation = event.data.get("generation")
        named = _named(event, ids)
        for request_id in named:
            by_id.setdefault(request_id, []).append(event)
        if not named and isinstance(generation, int):
            unnamed.setdefault((str(event.data.get("plugin")), generation), []).append(event)
    stamps = {key: [_stamp(e) for e in lines] for key, lines in unnamed.items()}
    starts: dict[tuple[str, int], list[float]] = {}
    for record in records:
        if record.generation is not None:
            starts.setdefault((record.plugin, record.generation), []).append(record.ts)
    for following in starts.values():
        following.sort()
    found: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        lines = [(_stamp(e), e.id, {**e.data, "match": "id"}) for e in by_id.get(record.id, ())]
        key = (record.plugin, record.generation) if record.generation is not None else None
        if key is not None and key in unnamed:
            ended = record.finished_ts if record.finished_ts is not None else now
            window_end = ended + lag_s
            following = starts[key]
            after = bisect.bisect_left(following, ended)
            if after < len(following):  # the next request it served began then
                window_end = min(window_end, max(following[after], ended))
            times = stamps[key]
            first = bisect.bisect_left(times, record.ts)
            last = bisect.bisect_right(times, window_end)
            lines += [
                (times[i], unnamed[key][i].id, {**unnamed[key][i].data, "match": "time"})
                for i in range(first, last)
            ]
        found[record.id] = [line for _, _, line in sorted(lines, key=lambda x: (x[0], x[1]))]
    return found


def _stamp(event: Event) -> float:
    return float(event.data.get("ts", event.ts))
