"""Hot-reload telemetry sent over real OTLP/HTTP to a real local receiver."""

from __future__ import annotations

import gzip
import itertools
import logging
import os
import shutil
import socket
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span

import powerx
from powerx.observe.otlp import ENDPOINT_ENV, SPAN_NAME, OtlpExporter, otlp_endpoint
from powerx.testing import wait_until

ALPHA = "com.example.alpha"
BETA = "com.example.beta"

# (plugin, digest, status, reason, duration_ms, phases_ms)
Reload = tuple[str, str | None, str, str | None, float, dict[str, float]]
RELOADS: list[Reload] = [
    (
        ALPHA,
        "sha256:a1",
        "ok",
        None,
        120.0,
        {"build": 50.0, "upload": 20.0, "start": 40.0, "swap": 10.0},
    ),
    (
        ALPHA,
        "sha256:a2",
        "ok",
        None,
        95.5,
        {"build": 40.25, "upload": 15.0, "start": 30.0, "swap": 10.25},
    ),
    (
        BETA,
        "sha256:b1",
        "ok",
        None,
        210.0,
        {"build": 150.0, "upload": 25.5, "start": 30.0, "swap": 4.5},
    ),
    (BETA, "sha256:b2", "failed", "build_failed", 33.0, {"build": 33.0}),
    (ALPHA, None, "blocked", "version_mismatch", 12.0, {"build": 9.0, "upload": 3.0}),
]


@dataclass
class Collector:
    """What a local OTLP/HTTP receiver has been sent, decoded."""

    url: str
    metrics: list[ExportMetricsServiceRequest] = field(default_factory=list)
    traces: list[ExportTraceServiceRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def spans(self) -> list[Span]:
        with self.lock:
            return [
                span
                for request in self.traces
                for resource_spans in request.resource_spans
                for scope_spans in resource_spans.scope_spans
                for span in scope_spans.spans
            ]

    def latest_metric(self, name: str) -> Metric:
        """The metric from the last export that carried it (cumulative: the totals)."""
        with self.lock:
            found = [
                metric
                for request in self.metrics
                for resource_metrics in request.resource_metrics
                for scope_metrics in resource_metrics.scope_metrics
                for metric in scope_metrics.metrics
                if metric.name == name
            ]
        assert found, f"no export carried {name}"
        latest: Metric = found[-1]
        return latest


def _handler(collector: Collector) -> type[BaseHTTPRequestHandler]:
    class OtlpHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            encoding = self.headers.get("content-encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            reply: bytes
            if self.path == "/v1/metrics":
                metrics_request = ExportMetricsServiceRequest()
                metrics_request.ParseFromString(body)
                with collector.lock:
                    collector.metrics.append(metrics_request)
                reply = ExportMetricsServiceResponse().SerializeToString()
            elif self.path == "/v1/traces":
                trace_request = ExportTraceServiceRequest()
                trace_request.ParseFromString(body)
                with collector.lock:
                    collector.traces.append(trace_request)
                reply = ExportTraceServiceResponse().SerializeToString()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return OtlpHandler


@pytest.fixture(autouse=True)
def _no_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's OTEL_* settings (temporality, compression, sampler) or a proxy must
    # not change what these tests see.
    for name in list(os.environ):
        if name.startswith("OTEL_") or name.lower() in {"http_proxy", "https_proxy", "all_proxy"}:
            monkeypatch.delenv(name)


def _start_collector() -> tuple[Collector, ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    collector = Collector(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(collector)
    threading.Thread(
        target=server.serve_forever, args=(0.05,), name="otlp-receiver", daemon=True
    ).start()
    return collector, server


@pytest.fixture
def collector() -> Iterator[Collector]:
    receiver, server = _start_collector()
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture
def exported(collector: Collector) -> Iterator[Collector]:
    """The collector after the five reloads were recorded and flushed."""
    # A long interval, so the only exports are the ones flush() makes.
    exporter = OtlpExporter(collector.url, export_interval_s=60, timeout_s=5)
    try:
        for reload in RELOADS:
            exporter.record_reload(*reload)
        assert exporter.flush(timeout_s=10) is True
    finally:
        exporter.shutdown()
    yield collector


def attrs(key_values: Iterable[KeyValue]) -> dict[str, object]:
    result: dict[str, object] = {}
    for kv in key_values:
        kind = kv.value.WhichOneof("value")
        result[kv.key] = getattr(kv.value, kind) if kind else None
    return result


def test_duration_histogram_counts_reloads_per_plugin_and_phase(exported: Collector) -> None:
    metric = exported.latest_metric("debug_hot_reload_duration_ms")
    assert metric.unit == "ms"
    assert metric.histogram.aggregation_temporality == (
        AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    )
    points = {
        (attrs(p.attributes)["plugin"], attrs(p.attributes)["phase"]): p
        for p in metric.histogram.data_points
    }
    for plugin in (ALPHA, BETA):
        mine = [r for r in RELOADS if r[0] == plugin]
        total = points[(plugin, "total")]
        assert total.count == len(mine)
        assert total.sum == pytest.approx(sum(r[4] for r in mine))
        for phase in ("build", "upload", "start", "swap"):
            with_phase = [r[5][phase] for r in mine if phase in r[5]]
            assert points[(plugin, phase)].count == len(with_phase)
            assert points[(plugin, phase)].sum == pytest.approx(sum(with_phase))
    assert len(points) == 2 + 4 + 4  # total for both, four phases for both


def counter_values(collector: Collector, name: str) -> dict[tuple[object, ...], int]:
    metric = collector.latest_metric(name)
    assert metric.sum.is_monotonic
    return {tuple(sorted(attrs(p.attributes).items())): p.as_int for p in metric.sum.data_points}


def test_counters_count_reloads_failures_and_mismatches(exported: Collector) -> None:
    assert counter_values(exported, "debug_hot_reload_total") == {
        (("plugin", ALPHA), ("status", "ok")): 2,
        (("plugin", ALPHA), ("status", "blocked")): 1,
        (("plugin", BETA), ("status", "ok")): 1,
        (("plugin", BETA), ("status", "failed")): 1,
    }
    assert counter_values(exported, "debug_hot_reload_failure_total") == {
        (("reason", "build_failed"),): 1,
        (("reason", "version_mismatch"),): 1,
    }
    assert counter_values(exported, "debug_host_version_mismatch_total") == {
        (("plugin", ALPHA),): 1,
    }


def test_each_reload_is_one_span_with_its_attributes(exported: Collector) -> None:
    roots = [s for s in exported.spans() if s.name == "plugin.debug.hot_reload"]
    assert len(roots) == len(RELOADS)
    seen = [
        (a["plugin"], a.get("digest"), a["status"], a.get("reason"), a["duration_ms"])
        for a in (attrs(s.attributes) for s in roots)
    ]
    assert sorted(seen, key=repr) == sorted((r[:5] for r in RELOADS), key=repr)
    for span in roots:
        assert span.parent_span_id == b""
        failed = attrs(span.attributes)["status"] != "ok"
        assert (span.status.code == span.status.STATUS_CODE_ERROR) is failed
        duration_ms = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6
        assert duration_ms == pytest.approx(attrs(span.attributes)["duration_ms"], abs=1)


def test_phase_spans_are_children_laid_back_to_back_up_to_the_end(exported: Collector) -> None:
    spans = exported.spans()
    roots = {s.span_id: s for s in spans if s.name == "plugin.debug.hot_reload"}
    by_reload = {
        (attrs(s.attributes)["plugin"], attrs(s.attributes).get("digest")): s
        for s in roots.values()
    }
    for plugin, digest, _status, _reason, _total, phases in RELOADS:
        root = by_reload[(plugin, digest)]
        children = sorted(
            (s for s in spans if s.parent_span_id == root.span_id),
            key=lambda s: s.start_time_unix_nano,
        )
        assert [s.name for s in children] == [f"plugin.debug.hot_reload.{p}" for p in phases]
        for child, (phase, ms) in zip(children, phases.items(), strict=True):
            assert child.trace_id == root.trace_id
            assert attrs(child.attributes)["phase"] == phase
            assert (child.end_time_unix_nano - child.start_time_unix_nano) / 1e6 == pytest.approx(
                ms, abs=1
            )
            assert child.start_time_unix_nano >= root.start_time_unix_nano
        assert children[-1].end_time_unix_nano == root.end_time_unix_nano
        for earlier, later in itertools.pairwise(children):
            assert earlier.end_time_unix_nano == later.start_time_unix_nano


def test_resource_names_the_simulator_service(exported: Collector) -> None:
    resources = [rm.resource for request in exported.metrics for rm in request.resource_metrics]
    resources += [rs.resource for request in exported.traces for rs in request.resource_spans]
    assert resources
    for resource in resources:
        found = attrs(resource.attributes)
        assert found["service.name"] == "powerx-host-simulator"
        assert found["service.version"] == powerx.__version__


def test_two_exporters_in_one_process_keep_their_data_apart(collector: Collector) -> None:
    other, server = _start_collector()
    first = OtlpExporter(collector.url, export_interval_s=60)
    second = OtlpExporter(other.url, export_interval_s=60)
    try:
        first.record_reload(*RELOADS[0])
        second.record_reload(*RELOADS[2])
        assert first.flush() and second.flush()
    finally:
        first.shutdown()
        second.shutdown()
        server.shutdown()
        server.server_close()
    assert {attrs(s.attributes)["plugin"] for s in collector.spans()} == {ALPHA}
    assert {attrs(s.attributes)["plugin"] for s in other.spans()} == {BETA}
    # The providers are private: nothing was installed globally.
    assert trace.get_tracer_provider() is not first._tracer_provider
    assert metrics.get_meter_provider() is not first._meter_provider


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_unreachable_collector_neither_slows_nor_breaks_recording(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="powerx.observe.otlp")
    exporter = OtlpExporter(
        f"http://127.0.0.1:{_closed_port()}", export_interval_s=0.2, timeout_s=0.5
    )
    try:
        started = time.monotonic()
        for _ in range(10):
            for reload in RELOADS:
                exporter.record_reload(*reload)
        assert time.monotonic() - started < 1.0

        # A periodic export fails in the background (and says so once).
        assert wait_until(lambda: any("OTLP export" in r.getMessage() for r in caplog.records), 10)
        started = time.monotonic()
        assert exporter.flush(timeout_s=2) is False
        assert time.monotonic() - started < 3.0
    finally:
        started = time.monotonic()
        exporter.shutdown()
        assert time.monotonic() - started < 2.0

    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "OTLP export" in warnings[0].getMessage()
    assert not [r for r in warnings if r.name.startswith("opentelemetry")]


def test_endpoint_env_wins_over_config_and_empty_means_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert otlp_endpoint() is None
    assert otlp_endpoint("") is None
    assert otlp_endpoint("http://config:4318") == "http://config:4318"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318")
    assert otlp_endpoint("http://config:4318") == "http://env:4318"
    assert otlp_endpoint() == "http://env:4318"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "  ")
    assert otlp_endpoint("http://config:4318") == "http://config:4318"
    assert otlp_endpoint(None) is None


def test_the_simulator_exports_its_reloads_to_the_configured_collector(
    collector: Collector, workspace: Any, start_simulator: Any, tmp_path: Path
) -> None:
    from tests.conftest import HELLO_PYTHON
    from tests.integration.test_hot_reload import push, set_python_greeting

    workspace.login()
    workspace.env[ENDPOINT_ENV] = collector.url
    plugin = tmp_path / "hello-python"
    shutil.copytree(HELLO_PYTHON, plugin)
    simulator = start_simulator([plugin])
    set_python_greeting(plugin, "exported")
    assert push(simulator, plugin).status_code == 200
    manifest = plugin / "plugin.yaml"
    manifest.write_text(manifest.read_text().replace('">=2.3 <3"', '">=3"'))
    assert push(simulator, plugin).status_code == 409
    simulator.stop()  # shutting down flushes what is pending

    roots = [s for s in collector.spans() if s.name == SPAN_NAME]
    assert sorted(attrs(s.attributes)["status"] for s in roots) == ["blocked", "ok"]
    assert {attrs(s.attributes)["plugin"] for s in roots} == {"com.example.hello-python"}
    mismatches = collector.latest_metric("debug_host_version_mismatch_total")
    assert [p.as_int for p in mismatches.sum.data_points] == [1]
