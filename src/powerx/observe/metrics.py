"""Prometheus metrics of one simulator, in a registry of its own (several simulators, or
a test's, never share counters through prometheus_client's global registry)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

# Save-to-serving is ~50-150 ms when things go well; the tail goes to seconds.
_MS_BUCKETS = (5, 10, 25, 50, 75, 100, 150, 250, 500, 1000, 2500, 5000, 10000, 30000)
PHASES = ("build_ms", "upload_ms", "start_ms", "swap_ms", "total_ms")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reload_duration = Histogram(
            "debug_hot_reload_duration_ms",
            "Hot reload duration in milliseconds, by plugin and phase (total: the whole reload).",
            ["plugin", "phase"],
            buckets=_MS_BUCKETS,
            registry=self.registry,
        )
        self.reloads = Counter(
            "debug_hot_reload",
            "Hot reloads by plugin and status (ok, unchanged, failed, blocked).",
            ["plugin", "status"],
            registry=self.registry,
        )
        self.failures = Counter(
            "debug_hot_reload_failure",
            "Failed or blocked hot reloads by reason (the error code).",
            ["reason"],
            registry=self.registry,
        )
        self.mismatches = Counter(
            "debug_host_version_mismatch",
            "Reloads refused because the plugin's host.api range excludes the image.",
            ["plugin"],
            registry=self.registry,
        )
        self.client_latency = Histogram(
            "debug_hot_reload_client_latency_ms",
            "Save-to-served latency as the developer's client measured it.",
            ["plugin"],
            buckets=_MS_BUCKETS,
            registry=self.registry,
        )
        self.breakpoints = Counter(
            "debug_breakpoint_sync",
            "Breakpoints replayed into generations, by plugin and kind (set, verified).",
            ["plugin", "kind"],
            registry=self.registry,
        )
        self.breakpoint_replay = Histogram(
            "debug_breakpoint_replay_ms",
            "Time to replay the breakpoint set into a new generation.",
            ["plugin"],
            buckets=_MS_BUCKETS,
            registry=self.registry,
        )
        self.permission_denials = Counter(
            "debug_permission_denied",
            "Host API calls refused because the manifest lacks the scope, and requests "
            "refused because the identity's perms lack the permission (RBAC).",
            ["plugin", "scope"],
            registry=self.registry,
        )
        self.host_calls = Counter(
            "debug_host_grpc_calls",
            "Calls to the host's gRPC services (STS, IAM) by plugin, method and status code.",
            ["plugin", "method", "code"],
            registry=self.registry,
        )
        self.egress_blocked = Counter(
            "debug_egress_blocked",
            "Connections a plugin tried to open to production PowerX or a host outside its "
            "manifest's egress list, blocked in the plugin process.",
            ["plugin", "reason"],
            registry=self.registry,
        )

    def observe_reload(
        self, plugin: str, status: str, reason: str | None, phases_ms: Mapping[str, float]
    ) -> None:
        self.reloads.labels(plugin, status).inc()
        if status in {"failed", "blocked"}:
            self.failures.labels(reason or "unknown").inc()
        if reason == "version_mismatch":
            self.mismatches.labels(plugin).inc()
        for phase in PHASES:
            if phase in phases_ms:
                self.reload_duration.labels(plugin, phase.removesuffix("_ms")).observe(
                    phases_ms[phase]
                )

    def render(self) -> bytes:
        return generate_latest(self.registry)
