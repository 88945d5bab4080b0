"""Export hot-reload telemetry to an OpenTelemetry collector over OTLP/HTTP (protobuf).

Every reload becomes metrics (a duration histogram and three counters) and a trace (one
``plugin.debug.hot_reload`` span with a child span per phase). Providers are private to
each `OtlpExporter`, so several simulators can share a process without sharing data.

Recording only touches memory; a background reader and a batch span processor do the
network work. A collector that is down costs one warning, not a log line per export.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode

from powerx import __version__
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError

__all__ = ["ENDPOINT_ENV", "SERVICE_NAME", "OtlpExporter", "otlp_endpoint"]

ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
SERVICE_NAME = "powerx-host-simulator"
SPAN_NAME = "plugin.debug.hot_reload"
PHASES = ("build", "upload", "start", "swap")
"""Reload phases in the order they run; phase spans are laid out in this order."""

# Reloads range from a swap of a cached build (tens of ms) to a cold build (a minute).
_DURATION_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)

# The OTLP exporters report failures through these loggers (the HTTP client logs through
# the exporter's own logger). Records they emit while we export are swallowed and
# summarised by `_ExportHealth` instead.
_SDK_EXPORT_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.common.http",
)

_logger = logging.getLogger(__name__)
_T = TypeVar("_T")


def otlp_endpoint(configured: str | None = None) -> str | None:
    """The collector base URL to export to, or None when export is off.

    ``OTEL_EXPORTER_OTLP_ENDPOINT`` wins over the configured value; an empty or blank
    value counts as unset.
    """
    for candidate in (os.environ.get(ENDPOINT_ENV), configured):
        if candidate and candidate.strip():
            return candidate.strip()
    return None


class _ExportContext(threading.local):
    quiet: bool = False
    detail: str | None = None


_export_context = _ExportContext()


class _QuietWhileExporting(logging.Filter):
    """Drop SDK records logged inside `_ExportHealth.run`; keep the first, which has the cause."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _export_context.quiet:
            return True
        if _export_context.detail is None:
            _export_context.detail = record.getMessage()
        return False


_QUIET_FILTER = _QuietWhileExporting()
for _name in _SDK_EXPORT_LOGGERS:
    logging.getLogger(_name).addFilter(_QUIET_FILTER)  # idempotent for the same filter


class _ExportHealth:
    """Turns per-export failures into one warning per outage and one note on recovery."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.failures = 0
        self._failing: set[str] = set()
        self._lock = threading.Lock()

    @property
    def failing(self) -> bool:
        return bool(self._failing)

    def run(self, signal: str, export: Callable[[], _T], succeeded: Callable[[_T], bool]) -> bool:
        _export_context.quiet, _export_context.detail = True, None
        try:
            ok = succeeded(export())
        except Exception as error:  # an exporter bug must not kill the SDK worker thread
            ok, _export_context.detail = False, repr(error)
        finally:
            _export_context.quiet = False
        self._note(signal, ok, _export_context.detail)
        return ok

    def _note(self, signal: str, ok: bool, detail: str | None) -> None:
        with self._lock:
            if ok:
                if signal not in self._failing:
                    return
                self._failing.discard(signal)
                if not self._failing:
                    _logger.info("OTLP export to %s works again", self.endpoint)
                return
            self.failures += 1
            first = not self._failing
            self._failing.add(signal)
        level = logging.WARNING if first else logging.DEBUG
        _logger.log(
            level,
            "OTLP export of %s to %s failed, so that telemetry is dropped; further failures "
            "are logged at debug level until the collector answers. Cause: %s",
            signal,
            self.endpoint,
            detail or "no detail",
        )


class _GuardedSpanExporter(SpanExporter):
    def __init__(self, inner: SpanExporter, health: _ExportHealth) -> None:
        self._inner = inner
        self._health = health

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        ok = self._health.run(
            "traces", lambda: self._inner.export(spans), lambda r: r is SpanExportResult.SUCCESS
        )
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class _GuardedMetricExporter(MetricExporter):
    def __init__(self, inner: MetricExporter, health: _ExportHealth) -> None:
        # The reader asks the exporter for temporality and aggregation; keep the inner
        # exporter's, which honour OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE.
        super().__init__(inner._preferred_temporality, inner._preferred_aggregation)
        self._inner = inner
        self._health = health

    def export(
        self,
        metrics_data: MetricsData,
        timeout_millis: float = 10_000,
        **kwargs: object,
    ) -> MetricExportResult:
        ok = self._health.run(
            "metrics",
            lambda: self._inner.export(metrics_data, timeout_millis=timeout_millis),
            lambda r: r is MetricExportResult.SUCCESS,
        )
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        self._inner.shutdown(timeout_millis=timeout_millis)


def _run_bounded(work: Callable[[], bool], timeout_s: float, name: str) -> bool:
    """Run ``work`` on a daemon thread; False if it fails or outlasts ``timeout_s``.

    The SDK ignores the span flush timeout and retries an unreachable collector until
    its own export timeout, so the caller's bound is enforced here.
    """
    outcome: list[bool] = []

    def target() -> None:
        try:
            outcome.append(work())
        except Exception:
            _logger.debug("%s failed", name, exc_info=True)
            outcome.append(False)

    worker = threading.Thread(target=target, name=name, daemon=True)
    worker.start()
    worker.join(max(timeout_s, 0.0))
    return bool(outcome and outcome[0])


def _clean_ms(ms: float) -> float:
    return ms if math.isfinite(ms) and ms > 0 else 0.0


def _ordered_phases(phases_ms: Mapping[str, float]) -> list[tuple[str, float]]:
    known = [p for p in PHASES if p in phases_ms]
    others = [p for p in phases_ms if p not in PHASES and p != "total"]
    return [(p, _clean_ms(phases_ms[p])) for p in known + others]


class OtlpExporter:
    """Sends hot-reload metrics and traces to the collector at ``endpoint``.

    ``endpoint`` is a base URL (``http://127.0.0.1:4318``); data goes to ``/v1/metrics``
    and ``/v1/traces``. Metrics are exported every ``export_interval_s`` (cumulative
    unless ``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`` says otherwise) and
    spans are batched on the same schedule; each export gives up after ``timeout_s``.
    Call `shutdown` when the simulator stops, or the last interval's data is lost.
    """

    def __init__(
        self, endpoint: str, *, export_interval_s: float = 5.0, timeout_s: float = 5.0
    ) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise PowerXError(
                ErrorCode.INVALID_OTLP_ENDPOINT,
                f"The OTLP endpoint '{endpoint}' is not an http(s) URL.",
                "use a collector base URL such as http://127.0.0.1:4318.",
            )
        if export_interval_s <= 0 or timeout_s <= 0:
            raise ValueError("export_interval_s and timeout_s must be positive")
        base = endpoint.rstrip("/")
        self.endpoint = base
        self._timeout_s = timeout_s
        self._health = _ExportHealth(base)
        self._closed = False
        self._record_failed = False
        resource = Resource.create({"service.name": SERVICE_NAME, "service.version": __version__})

        metric_exporter = OTLPMetricExporter(endpoint=f"{base}/v1/metrics", timeout=timeout_s)
        reader = PeriodicExportingMetricReader(
            _GuardedMetricExporter(metric_exporter, self._health),
            export_interval_millis=export_interval_s * 1000,
            export_timeout_millis=timeout_s * 1000,
        )
        # Private providers, never the global ones, and no atexit hook per instance:
        # the owner calls `shutdown`.
        self._meter_provider = MeterProvider(
            metric_readers=[reader], resource=resource, shutdown_on_exit=False
        )
        meter = self._meter_provider.get_meter(__name__, __version__)
        self._duration = meter.create_histogram(
            "debug_hot_reload_duration_ms",
            unit="ms",
            description="Hot reload duration, whole (phase=total) and per phase.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS_MS,
        )
        self._reloads = meter.create_counter(
            "debug_hot_reload_total", description="Hot reloads by plugin and status."
        )
        self._failures = meter.create_counter(
            "debug_hot_reload_failure_total", description="Hot reloads that did not go live."
        )
        self._mismatches = meter.create_counter(
            "debug_host_version_mismatch_total",
            description="Reloads blocked because the plugin wants another host API.",
        )

        span_exporter = OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=timeout_s)
        self._tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        self._tracer_provider.add_span_processor(
            BatchSpanProcessor(
                _GuardedSpanExporter(span_exporter, self._health),
                schedule_delay_millis=export_interval_s * 1000,
                export_timeout_millis=timeout_s * 1000,
            )
        )
        self._tracer = self._tracer_provider.get_tracer(__name__, __version__)

    def record_reload(
        self,
        plugin: str,
        digest: str | None,
        status: str,
        reason: str | None,
        duration_ms: float,
        phases_ms: Mapping[str, float],
    ) -> None:
        """Record one reload that has just ended. Never blocks on I/O, never raises.

        Phases are laid out in `PHASES` order, then any others; a "total" phase is ignored.
        """
        if self._closed:
            return
        try:
            self._duration.record(_clean_ms(duration_ms), {"plugin": plugin, "phase": "total"})
            for phase, ms in _ordered_phases(phases_ms):
                self._duration.record(ms, {"plugin": plugin, "phase": phase})
            self._reloads.add(1, {"plugin": plugin, "status": status})
            if status != "ok":
                self._failures.add(1, {"reason": reason or status})
            if reason == "version_mismatch":
                self._mismatches.add(1, {"plugin": plugin})
            self._record_trace(plugin, digest, status, reason, duration_ms, phases_ms)
        except Exception:  # telemetry must never break a reload
            level = logging.DEBUG if self._record_failed else logging.WARNING
            self._record_failed = True
            _logger.log(level, "could not record the reload of %s", plugin, exc_info=True)

    def _record_trace(
        self,
        plugin: str,
        digest: str | None,
        status: str,
        reason: str | None,
        duration_ms: float,
        phases_ms: Mapping[str, float],
    ) -> None:
        end = time.time_ns()
        phases = [(name, ms, round(ms * 1e6)) for name, ms in _ordered_phases(phases_ms)]
        phases_ns = sum(ns for _, _, ns in phases)
        # Phases run back to back up to the end; stretch the parent if they add up to
        # more than the reported total so that no child starts before its parent.
        start = end - max(round(_clean_ms(duration_ms) * 1e6), phases_ns)
        attributes: dict[str, str | float] = {
            "plugin": plugin,
            "status": status,
            "duration_ms": duration_ms,
        }
        if digest is not None:
            attributes["digest"] = digest
        if reason is not None:
            attributes["reason"] = reason
        reload_span = self._tracer.start_span(SPAN_NAME, start_time=start, attributes=attributes)
        parent = trace.set_span_in_context(reload_span)
        cursor = end - phases_ns
        for name, ms, ns in phases:
            phase_span = self._tracer.start_span(
                f"{SPAN_NAME}.{name}",
                context=parent,
                start_time=cursor,
                attributes={"plugin": plugin, "phase": name, "duration_ms": ms},
            )
            cursor += ns
            phase_span.end(end_time=cursor)
        if status != "ok":
            reload_span.set_status(Status(StatusCode.ERROR, reason or status))
        reload_span.end(end_time=end)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Export everything recorded so far; True only if the collector took all of it.

        Waits at most ``timeout_s``; never raises.
        """
        if self._closed:
            return False
        failures_before = self._health.failures
        deadline = time.monotonic() + timeout_s

        def flush_both() -> bool:
            spans_ok = self._tracer_provider.force_flush(int(timeout_s * 1000))
            remaining_ms = max(deadline - time.monotonic(), 0.001) * 1000
            metrics_ok = self._meter_provider.force_flush(remaining_ms)
            return spans_ok and metrics_ok

        flushed = _run_bounded(flush_both, timeout_s, "powerx-otlp-flush")
        return flushed and self._health.failures == failures_before

    def shutdown(self) -> None:
        """Export what is left and stop the export threads.

        Waits at most ``timeout_s``, and not at all while the collector is failing: the
        simulator should stop at once rather than retry into a dead endpoint.
        """
        if self._closed:
            return
        self._closed = True
        wait_s = 0.0 if self._health.failing else self._timeout_s

        def shut_both() -> bool:
            self._tracer_provider.shutdown()
            self._meter_provider.shutdown(timeout_millis=self._timeout_s * 1000)
            return True

        _run_bounded(shut_both, wait_s, "powerx-otlp-shutdown")
