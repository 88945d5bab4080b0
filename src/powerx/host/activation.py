"""What one change of what serves (a reload, a mount, a rollback) did."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Activation:
    """What a reload, mount or rollback did, with the time of each phase (ms)."""

    plugin: str
    generation: int
    digest: str
    status: str  # "ok" | "unchanged"
    timings: dict[str, float] = field(default_factory=dict)
    previous_digest: str | None = None
    reload_id: str | None = None
    debug: dict[str, float] | None = None  # breakpoints replayed into the generation
    # How long the reload stood aside while the new generation answered the request held
    # for it; not part of the reload's own time.
    deferred_ms: float = 0.0

    def finish(self, since: float) -> None:
        """Record the total time from ``since`` (``perf_counter``), less ``deferred_ms``."""
        self.timings["total_ms"] = (time.perf_counter() - since) * 1000 - self.deferred_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin,
            "generation": self.generation,
            "digest": self.digest,
            "status": self.status,
            "previous_digest": self.previous_digest,
            "reload_id": self.reload_id,
            "timings": {k: round(v, 2) for k, v in self.timings.items()},
            "debug": self.debug,
        }
