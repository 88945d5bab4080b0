"""The dev protocol's answers in PowerX's shapes (host/routes/dev_wire.py)."""

from __future__ import annotations

from datetime import datetime

from powerx.errors import PowerXError, Problem
from powerx.host.routes.dev_wire import envelope, problem, rfc3339


def test_the_envelope_carries_the_payload_in_data_and_at_the_top_level() -> None:
    body = envelope({"sessionId": "s", "message": "generation 2 serves", "code": 7}, 201)
    assert (body["code"], body["message"]) == (201, "success")
    assert body["data"] == {"sessionId": "s", "message": "generation 2 serves", "code": 7}
    assert body["sessionId"] == "s"  # px-plugin's older client reads the top level
    assert isinstance(body["timestamp"], int)


def test_a_problem_is_rfc_9457_and_keeps_the_simulator_s_code_and_fix() -> None:
    error = PowerXError(
        "dev_session_expired",
        "The session expired.",
        "register again.",
        status=410,
        problems=[Problem("sessionId", "expired")],
        details={"sessionId": "s", "status": "shadowed", "code": "shadowed"},
    )
    body = problem(error)
    assert body["type"] == "about:blank" and body["title"] == "Gone"
    assert (body["status"], body["detail"]) == (410, "The session expired.")
    assert body["code"] == body["error"] == "dev_session_expired"
    assert (body["message"], body["fix"], body["sessionId"]) == (
        "The session expired.",
        "register again.",
        "s",
    )
    assert body["problems"] == [{"where": "sessionId", "message": "expired"}]


def test_times_are_rfc_3339_in_utc() -> None:
    text = rfc3339(1_800_000_000.25)
    assert text == "2027-01-15T08:00:00.250Z"
    assert text is not None and datetime.fromisoformat(text).timestamp() == 1_800_000_000.25
    assert rfc3339(None) is None
