"""Plugin log records: captured per plugin and generation, masked before anything else
sees them, kept in a ring for the live stream and written to the telemetry store.

A plugin line that is a JSON object is taken as a structured record (its ``level`` and
``msg``/``message`` are used, the other keys kept as fields); any other line is text,
with a level read from a leading ``ERROR``/``WARNING:``/... word when there is one.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from powerx.observe.events import Event, EventBus
from powerx.observe.masking import mask_line, mask_value
from powerx.observe.telemetry import TelemetryStore

LEVELS = ("debug", "info", "warning", "error", "critical")
_LEVEL_ALIASES = {"warn": "warning", "err": "error", "fatal": "critical", "trace": "debug"}
_LEADING_LEVEL = re.compile(
    r"^\s*\[?(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL|TRACE)\b[\]:]?", re.IGNORECASE
)
LOG_EVENT = "log"


def level_rank(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else 1


def normalise_level(raw: object, default: str) -> str:
    if not isinstance(raw, str):
        return default
    lowered = raw.strip().lower()
    lowered = _LEVEL_ALIASES.get(lowered, lowered)
    return lowered if lowered in LEVELS else default


@dataclass
class PluginContext:
    """What the hub adds to every record of a plugin (the manifest's version, the tenant)."""

    version: str
    tenant: str


class LogHub:
    def __init__(self, store: TelemetryStore | None, capacity: int = 5000) -> None:
        self.bus = EventBus(capacity=capacity)
        self.store = store
        self.contexts: dict[str, PluginContext] = {}
        self._pending: list[dict[str, Any]] = []

    def record(
        self,
        plugin: str,
        generation: int | None,
        stream: str,
        line: str,
        *,
        latency_ms: float | None = None,
        reason: str | None = None,
        level: str | None = None,
        tenant: str | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Mask, enrich and publish one line; returns the record as stored and streamed.
        ``request_id``: the request the line is about (the simulator's access line)."""
        default = level or ("warning" if stream == "stderr" else "info")
        message, fields = self._parse(line, default)
        found_level = fields.pop("level", default)
        context = self.contexts.get(plugin)
        record: dict[str, Any] = {
            "ts": time.time(),
            "plugin": plugin,
            "generation": generation,
            "tenant": tenant or (context.tenant if context else None),
            "version": context.version if context else None,
            "stream": stream,
            "level": found_level,
            "message": message,
            "latency_ms": round(latency_ms, 2) if latency_ms is not None else None,
            "reason": reason,
        }
        if fields:
            record["fields"] = fields
        if request_id is not None:
            record["request_id"] = request_id
        self.bus.publish(LOG_EVENT, record)
        self._pending.append(record)
        return record

    @staticmethod
    def _parse(line: str, default: str) -> tuple[str, dict[str, Any]]:
        stripped = line.strip()
        if stripped.startswith("{") and stripped.endswith("}"):
            try:
                data = json.loads(stripped)
            except ValueError:
                data = None
            if isinstance(data, dict):
                masked = mask_value(data)
                assert isinstance(masked, dict)
                fields: dict[str, Any] = dict(masked)
                raw_level = fields.pop("level", fields.pop("levelname", None))
                message = fields.pop("msg", fields.pop("message", fields.pop("event", "")))
                fields["level"] = normalise_level(raw_level, default)
                return str(message), fields
        masked_line = mask_line(line)
        match = _LEADING_LEVEL.match(masked_line)
        level = normalise_level(match.group(1), default) if match else default
        return masked_line, {"level": level}

    def recent(
        self, plugin: str | None = None, level: str | None = None, limit: int = 200
    ) -> list[Event]:
        wanted = [e for e in self.bus.since(0) if matches(e, plugin, level)]
        return wanted[-limit:]

    def flush(self) -> int:
        """Write pending records to the store (called periodically and at shutdown)."""
        pending, self._pending = self._pending, []
        if self.store is not None and pending:
            self.store.add_logs(pending)
        return len(pending)


def matches(event: Event, plugin: str | None, level: str | None) -> bool:
    if plugin is not None and event.data.get("plugin") != plugin:
        return False
    return level is None or level_rank(str(event.data.get("level"))) >= level_rank(level)
