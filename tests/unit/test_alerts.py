"""Alert rules over sliding windows (pure logic, explicit clocks)."""

from __future__ import annotations

from powerx.config import AlertRules
from powerx.observe.alerts import FAILURE_RATE, REPEATED_MISMATCH, AlertMonitor


def test_failure_rate_above_threshold_raises_once_then_clears_when_the_window_moves() -> None:
    monitor = AlertMonitor(
        AlertRules(failure_rate=0.05, failure_window_s=60, failure_min_reloads=5)
    )
    changes = []
    for second in range(19):
        changes += monitor.record_reload("p", failed=False, now=float(second))
    changes += monitor.record_reload("p", failed=True, now=19.0)  # 1 of 20 = 5 %: not above
    assert changes == []
    raised = monitor.record_reload("p", failed=True, now=20.0)  # 2 of 21
    assert [(c.state, c.alert.name) for c in raised] == [("raised", FAILURE_RATE)]
    assert monitor.record_reload("p", failed=True, now=21.0) == []  # still on: no repeat
    cleared = monitor.evaluate(now=200.0)  # every outcome left the window
    assert [(c.state, c.alert.name) for c in cleared] == [("cleared", FAILURE_RATE)]
    assert monitor.alerts() == []


def test_too_few_reloads_never_alert() -> None:
    monitor = AlertMonitor(AlertRules(failure_min_reloads=5))
    changes = [c for t in range(4) for c in monitor.record_reload("p", True, float(t))]
    assert changes == []


def test_repeated_mismatches_alert_per_plugin() -> None:
    monitor = AlertMonitor(
        AlertRules(mismatch_count=3, mismatch_window_s=600, failure_min_reloads=100)
    )
    assert monitor.record_mismatch("a", 0.0) == []
    assert monitor.record_mismatch("b", 1.0) == []
    assert monitor.record_mismatch("a", 2.0) == []
    raised = monitor.record_mismatch("a", 3.0)
    assert [(c.state, c.alert.name, c.alert.plugin) for c in raised] == [
        ("raised", REPEATED_MISMATCH, "a")
    ]
    assert "3 version mismatches in 10 min" in raised[0].alert.message
    cleared = monitor.evaluate(now=601.0)
    assert [(c.state, c.alert.plugin) for c in cleared] == [("cleared", "a")]
