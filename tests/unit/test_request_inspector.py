"""The request inspector's ring, its host call attribution, and what it shows: masked
headers and bodies, and the log lines matched to each request."""

from __future__ import annotations

import json
import time

from powerx.observe.events import Event
from powerx.observe.request_view import LOG_LAG_S, detail, logs_for, mask_body, mask_headers
from powerx.observe.requests import HostCall, RequestInspector, RequestRecord

PLUGIN = "com.test.plugin"


def _served(
    inspector: RequestInspector, generation: int = 1, tenant: str = "acme"
) -> RequestRecord:
    record = inspector.begin(PLUGIN, "GET", f"/plugins/{PLUGIN}/", "", [], "developer")
    inspector.sending(record, generation, 0.0, tenant, [])
    return record


def _call(api: str = "contacts.list") -> HostCall:
    return HostCall(time.time(), api, "GET", "/host/api/contacts", 200, 1.0)


def test_the_ring_keeps_the_last_requests_and_forgets_older_ones() -> None:
    inspector = RequestInspector(capacity=3)
    records = [_served(inspector) for _ in range(10)]
    for record in records:
        inspector.finish(record, 200)

    kept = inspector.records()
    assert [r.id for r in kept] == [r.id for r in records[-3:]]
    assert inspector.get(records[0].id) is None
    assert inspector.get(records[-1].id) is records[-1]
    assert len({r.id for r in records}) == 10 and records[0].id.startswith(f"{inspector.run}-")
    # Only what is still kept is announced to followers.
    announced = [e.data["id"] for e in inspector.bus.since(0)]
    assert announced == [r.id for r in records[-3:]]


def test_a_body_over_the_replay_cap_keeps_a_preview_and_is_not_replayable() -> None:
    inspector = RequestInspector(replay_body_bytes=10, preview_bytes=4)
    small, large = _served(inspector), _served(inspector)
    body = b"0123456789"
    inspector.keep_body(small, body)
    inspector.keep_body(large, body + b"!")

    assert (small.body, small.replayable) == (body, True)
    assert small.body is body  # kept by reference: nothing copied on the request path
    assert (large.body, large.body_size, large.replayable) == (b"0123", 11, False)


def test_a_host_call_goes_to_the_request_it_names_else_to_the_one_being_served() -> None:
    inspector = RequestInspector()
    first, second = _served(inspector), _served(inspector)
    elsewhere = _served(inspector, generation=2)
    other_tenant = _served(inspector, tenant="globex")

    inspector.host_call(PLUGIN, 1, second.id, "acme", "developer", _call("by-id"))
    inspector.host_call(PLUGIN, 1, None, "acme", "developer", _call("guessed"))
    inspector.finish(first, 200)
    inspector.host_call(PLUGIN, 1, None, "acme", "developer", _call("only"))

    assert [(c.api, c.match) for c in first.host_calls] == [("guessed", "shared")]
    assert [(c.api, c.match) for c in second.host_calls] == [
        ("by-id", "id"),
        ("guessed", "shared"),
        ("only", "only"),
    ]
    assert elsewhere.host_calls == other_tenant.host_calls == []


def test_credential_headers_never_show_raw() -> None:
    shown = dict(
        mask_headers(
            [
                (b"Authorization", b"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"),
                (b"cookie", b"session=abc; theme=dark"),
                (b"x-powerx-ctx", b"eyJ0aWQiOjF9"),
                (b"x-powerx-ctx-sig", b"0f" * 32),
                (b"x-powerx-grant", b"ZGV2.abc"),
                (b"x-api-key", b"k3y"),
                (b"x-contact", b"jane.doe@example.com"),
                (b"accept", b"application/json"),
            ]
        )
    )
    assert shown["authorization"] == "Bearer ***"
    assert shown["cookie"] == shown["x-powerx-ctx"] == shown["x-powerx-ctx-sig"] == "***"
    assert shown["x-powerx-grant"] == shown["x-api-key"] == "***"
    assert shown["x-contact"] == "***@example.com"
    assert shown["accept"] == "application/json"
    assert dict(mask_headers({"Set-Cookie": "id=1"})) == {"set-cookie": "***"}


def test_a_body_preview_is_masked_by_key_and_cut() -> None:
    body = json.dumps({"user": "ann", "password": "hunter2", "token": "t0k"}).encode()
    preview = mask_body(body, "application/json", 1000)
    assert json.loads(preview["text"]) == {"user": "ann", "password": "***", "token": "***"}
    form = mask_body(b"user=ann&password=hunter2&x=" + b"y" * 50, "", 30)
    assert "hunter2" not in form["text"] and form["truncated"] and len(form["text"]) == 30
    assert mask_body(b"\xff\xfe", "", 10)["binary"] is True


def _line(event_id: int, ts: float, message: str, generation: int = 1, **data: object) -> Event:
    record = {"ts": ts, "plugin": PLUGIN, "generation": generation, "message": message, **data}
    return Event(event_id, "log", ts, record)


def test_log_lines_are_matched_by_id_or_by_generation_and_time() -> None:
    inspector = RequestInspector()
    first, second = _served(inspector), _served(inspector)
    first.ts, first.finished_ts = 100.0, 100.1
    second.ts, second.finished_ts = 100.2, 100.3
    events = [
        _line(1, 99.9, "before either"),
        _line(2, 100.05, "while the first was served"),
        _line(3, 100.05, "the other generation", generation=2),
        _line(4, 100.06, f"handling {inspector.run}-99"),  # names another: not the first's
        _line(5, 100.15, "after the first, before the second"),
        _line(6, 100.21, f"handling {second.id}"),
        _line(7, 100.25, "tagged", fields={"request_id": first.id}),
        _line(8, 100.29, "access", request_id=second.id),
        _line(9, 100.3 + LOG_LAG_S / 2, "just after the second's answer"),
        _line(10, 100.3 + LOG_LAG_S * 2, "long after"),
    ]

    found = logs_for([first, second], events, inspector.run)

    def shown(record: RequestRecord) -> list[tuple[str, str]]:
        return [(line["message"], line["match"]) for line in found[record.id]]

    assert shown(first) == [
        ("while the first was served", "time"),
        ("after the first, before the second", "time"),  # within the lag, before the next
        ("tagged", "id"),
    ]
    assert shown(second) == [
        (f"handling {second.id}", "id"),
        ("access", "id"),
        ("just after the second's answer", "time"),
    ]


def test_an_id_is_not_matched_inside_a_longer_one() -> None:
    inspector = RequestInspector()
    records = [_served(inspector) for _ in range(12)]
    one, twelve = records[0], records[11]
    events = [_line(1, twelve.ts + 0.001, f"handling {twelve.id}")]

    found = logs_for([one, twelve], events, inspector.run, now=twelve.ts + 1)

    assert twelve.id.startswith(one.id)
    assert found[one.id] == [] and [x["match"] for x in found[twelve.id]] == ["id"]


def test_a_detail_carries_what_the_plugin_got_masked() -> None:
    inspector = RequestInspector()
    record = inspector.begin(PLUGIN, "POST", "/plugins/x/?token=abc123", "", [], "developer")
    inspector.keep_body(record, b'{"secret": "s"}')
    inspector.sending(record, 1, 12.5, "acme", [("authorization", "Bearer abc.def.ghi")])
    inspector.finish(record, 201, response_headers={"content-type": "application/json"})

    shown = detail(record, [])

    assert shown["held"] is True and shown["held_ms"] == 12.5 and shown["status"] == 201
    assert "abc123" not in shown["path"]
    assert shown["request"]["headers"] == [["authorization", "Bearer ***"]]
    assert json.loads(shown["request"]["body"]["text"]) == {"secret": "***"}
