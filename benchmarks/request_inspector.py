"""What the request inspector costs: recording on the request path (begin, body, send,
finish: references only, no masking, no I/O) and reading a full ring back in detail
(masking, log lines matched from a full log ring). Prints one line each.

    python benchmarks/request_inspector.py
    python benchmarks/request_inspector.py --requests 200000 --json
"""

from __future__ import annotations

import argparse
import json
import time

from powerx.observe.events import Event
from powerx.observe.request_view import detail, logs_for
from powerx.observe.requests import RequestInspector

HEADERS = [(b"accept", b"application/json"), (b"cookie", b"session=abc")] * 6
BODY = json.dumps({"title": "a note", "password": "hunter2"}).encode()


def recording(count: int) -> float:
    """Microseconds per request on the request path."""
    inspector = RequestInspector(500)
    started = time.perf_counter()
    for _ in range(count):
        record = inspector.begin("p", "POST", "/plugins/p/notes", "", HEADERS, "developer")
        inspector.keep_body(record, BODY)
        inspector.sending(record, 1, 0.0, "acme", HEADERS)
        inspector.finish(record, 200, response_headers={}, response_body=BODY, upstream_ms=1.0)
    return (time.perf_counter() - started) / count * 1e6


def reading(capacity: int, log_lines: int) -> float:
    """Milliseconds to read a full ring in detail against a full log ring."""
    inspector = RequestInspector(capacity)
    for _ in range(capacity):
        record = inspector.begin("p", "POST", "/plugins/p/notes", "", HEADERS, "developer")
        inspector.keep_body(record, BODY)
        inspector.sending(record, 1, 0.0, "acme", HEADERS)
        inspector.finish(record, 200, response_body=BODY)
    records = inspector.records()
    first, last = records[0].ts, records[-1].ts
    step = (last - first) / log_lines if last > first else 1e-6
    events = [
        Event(n, "log", first + n * step, {"ts": first + n * step, "plugin": "p", "generation": 1,
                                           "message": f"line {n}"})
        for n in range(log_lines)
    ]  # fmt: skip
    started = time.perf_counter()
    lines = logs_for(records, events, inspector.run)
    for record in records:
        detail(record, lines[record.id])
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = {
        "record_us_per_request": round(recording(args.requests), 2),
        "read_500_in_detail_ms": round(reading(500, 5000), 1),
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"recording: {figures['record_us_per_request']} µs per request (on the request path)")
    print(f"reading:   {figures['read_500_in_detail_ms']} ms for 500 requests in detail, "
          "5,000 log lines")  # fmt: skip


if __name__ == "__main__":
    main()
