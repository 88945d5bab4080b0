"""Which alerts the dev loop's terminal shows (pure logic; the simulator's rules are in
test_alerts.py)."""

from __future__ import annotations

from typing import Any

from powerx.reload.alerts import TerminalAlerts

RATE = "hot_reload_failure_rate"
MISMATCH = "repeated_version_mismatch"


def alert(name: str, plugin: str) -> dict[str, Any]:
    return {"name": name, "plugin": plugin, "message": f"{plugin}: {name}"}


def shown(changes: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str, str]]:
    return [(state, a["name"], a["plugin"]) for state, a in changes]


def test_an_alert_shows_once_at_the_failed_reload_that_starts_it_and_when_it_clears() -> None:
    alerts = TerminalAlerts(["p"])
    alerts.begin([])
    alerts.reloaded("p", ok=False)
    assert shown(alerts.update([alert(RATE, "p")])) == [("raised", RATE, "p")]
    alerts.reloaded("p", ok=False)
    assert alerts.update([alert(RATE, "p")]) == []  # still on: not repeated
    alerts.reloaded("p", ok=True)
    assert shown(alerts.update([])) == [("cleared", RATE, "p")]


def test_an_alert_raised_by_the_save_that_fixed_the_code_is_held_back() -> None:
    alerts = TerminalAlerts(["p"])
    alerts.begin([])
    alerts.reloaded("p", ok=False)
    assert alerts.update([]) == []  # too few reloads in the window yet
    alerts.reloaded("p", ok=True)  # the fix: its reload is the one that crosses the bar
    assert alerts.update([alert(RATE, "p")]) == []
    alerts.reloaded("p", ok=True)
    assert alerts.update([]) == []  # it cleared unseen: nothing to say
    alerts.reloaded("p", ok=False)
    assert shown(alerts.update([alert(RATE, "p")])) == [("raised", RATE, "p")]


def test_an_alert_the_fix_raises_before_its_reload_has_ended_here_is_held_back() -> None:
    """The simulator counts a reload at its flip, before the push answers this loop; a
    check made then (after the previous, failed reload) must not blame the fix."""
    alerts = TerminalAlerts(["p"])
    alerts.begin([])
    alerts.reloaded("p", ok=False)
    alerts.reloading("p")  # the fix: flipped on the simulator, its answer on its way
    assert alerts.update([alert(RATE, "p")]) == []
    alerts.reloaded("p", ok=True)
    assert alerts.update([alert(RATE, "p")]) == []


def test_a_held_back_alert_shows_when_a_later_reload_fails_while_it_is_on() -> None:
    alerts = TerminalAlerts(["p"])
    alerts.begin([])
    alerts.reloaded("p", ok=True)
    assert alerts.update([alert(RATE, "p")]) == []
    alerts.reloaded("p", ok=False)
    assert shown(alerts.update([alert(RATE, "p")])) == [("raised", RATE, "p")]


def test_alerts_active_before_the_loop_began_are_not_shown_until_they_come_back() -> None:
    alerts = TerminalAlerts(["p"])
    alerts.begin([alert(RATE, "p")])
    alerts.reloaded("p", ok=False)
    assert alerts.update([alert(RATE, "p")]) == []
    assert alerts.update([]) == []  # it cleared: never shown, so not said either
    assert shown(alerts.update([alert(RATE, "p")])) == [("raised", RATE, "p")]


def test_alerts_of_plugins_the_loop_does_not_watch_are_not_shown() -> None:
    alerts = TerminalAlerts(["p"])
    alerts.begin([])
    alerts.reloaded("p", ok=False)
    alerts.reloaded("other", ok=False)
    changes = alerts.update([alert(RATE, "other"), alert(MISMATCH, "p")])
    assert shown(changes) == [("raised", MISMATCH, "p")]


def test_a_clear_from_the_event_stream_is_said_once_and_only_of_a_shown_alert() -> None:
    alerts = TerminalAlerts(["p"])
    alerts.begin([alert(RATE, "old")])
    alerts.reloaded("p", ok=False)
    alerts.update([alert(RATE, "p")])
    assert alerts.cleared({"state": "cleared", **alert(RATE, "p")}) is not None
    assert alerts.cleared({"state": "cleared", **alert(RATE, "p")}) is None
    assert alerts.update([]) == []  # already said
    assert alerts.cleared(alert(MISMATCH, "p")) is None  # never shown
