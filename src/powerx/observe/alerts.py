"""Alert rules over sliding windows: a plugin's hot-reload failure rate above the
threshold, or repeated version mismatches. An alert is raised once when its condition
starts to hold and cleared once when it stops (re-checked on every reload and on a
periodic tick, so an alert also clears when its window simply moves on)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from powerx.config import AlertRules

FAILURE_RATE = "hot_reload_failure_rate"
REPEATED_MISMATCH = "repeated_version_mismatch"


@dataclass(frozen=True)
class Alert:
    name: str
    plugin: str
    severity: str
    message: str
    raised_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "plugin": self.plugin,
            "severity": self.severity,
            "message": self.message,
            "raised_at": self.raised_at,
        }


@dataclass(frozen=True)
class AlertChange:
    state: str  # raised | cleared
    alert: Alert

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, **self.alert.to_dict()}


class AlertMonitor:
    def __init__(self, rules: AlertRules) -> None:
        self.rules = rules
        self._outcomes: dict[str, deque[tuple[float, bool]]] = {}
        self._mismatches: dict[str, deque[float]] = {}
        self.active: dict[tuple[str, str], Alert] = {}

    def record_reload(
        self, plugin: str, failed: bool, now: float | None = None
    ) -> list[AlertChange]:
        """A reload attempt (a mismatch counts as a failed one too)."""
        now = time.time() if now is None else now
        self._outcomes.setdefault(plugin, deque()).append((now, failed))
        return self.evaluate(now)

    def record_mismatch(self, plugin: str, now: float | None = None) -> list[AlertChange]:
        now = time.time() if now is None else now
        self._mismatches.setdefault(plugin, deque()).append(now)
        return self.record_reload(plugin, True, now)

    def evaluate(self, now: float | None = None) -> list[AlertChange]:
        now = time.time() if now is None else now
        wanted: dict[tuple[str, str], Alert] = {}
        rules = self.rules
        for plugin, outcomes in self._outcomes.items():
            while outcomes and outcomes[0][0] < now - rules.failure_window_s:
                outcomes.popleft()
            failed = sum(1 for _, f in outcomes if f)
            if len(outcomes) >= rules.failure_min_reloads and failed / len(outcomes) > (
                rules.failure_rate
            ):
                wanted[(FAILURE_RATE, plugin)] = Alert(
                    FAILURE_RATE,
                    plugin,
                    "warning",
                    f"{plugin}: {failed} of the last {len(outcomes)} reloads failed "
                    f"({failed / len(outcomes):.0%}, threshold {rules.failure_rate:.0%} over "
                    f"{_span(rules.failure_window_s)}).",
                    now,
                )
        for plugin, times in self._mismatches.items():
            while times and times[0] < now - rules.mismatch_window_s:
                times.popleft()
            if len(times) >= rules.mismatch_count:
                wanted[(REPEATED_MISMATCH, plugin)] = Alert(
                    REPEATED_MISMATCH,
                    plugin,
                    "warning",
                    f"{plugin}: {len(times)} version mismatches in "
                    f"{_span(rules.mismatch_window_s)}; its host.api range excludes the image. "
                    "Fix the range or pick another image.",
                    now,
                )
        changes = []
        for key, alert in wanted.items():
            if key not in self.active:
                self.active[key] = alert
                changes.append(AlertChange("raised", alert))
        for key in list(self.active):
            if key not in wanted:
                changes.append(AlertChange("cleared", self.active.pop(key)))
        return changes

    def alerts(self) -> list[Alert]:
        return sorted(self.active.values(), key=lambda a: a.raised_at)


def _span(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 120 else f"{seconds:g} s"
