"""The attack plugins (plugins/) and the harness's own attempts against a real simulator:
nothing gets through, and every block the simulator sees is counted and audited.

One run (module-scoped: it starts one simulator and runs ~80 attempts) feeds every test.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.security.attacks import (
    NODE_ID,
    PYTHON_ID,
    UPLOAD,
    Findings,
    blocks_reported,
    egress_metric,
    run_attacks,
)


@pytest.fixture(scope="module")
def findings() -> Findings:
    return run_attacks()


def _names(findings: Findings, area_suffix: str) -> set[str]:
    return {a.name for a in findings.attempts if a.area.endswith(area_suffix)}


def test_no_attempt_gets_through(findings: Findings) -> None:
    through = [f"{a.area} / {a.name}: {a.detail}" for a in findings.attempts if a.through]
    assert through == [], "\n".join(through)
    assert findings.reached_victims == []


def test_every_route_of_the_issue_is_attempted(findings: Findings) -> None:
    assert {
        "loopback_other_port",
        "lookup_localhost_then_other_port",
        "udp_sendmsg",
        "policy_through_getaddrinfo_closure",
        "policy_through_gc",
        "lying_argument_types",
    } <= _names(findings, "(Python guard)") | _names(findings, "(Python)")
    assert {
        "http_get_other_port",
        "http_get_127_0_0_2",
        "custom_lookup_maps_allowed_name",
        "dns_resolve4_production",
        "original_worker_class",
        "process_binding_tcp_wrap",
        "prototype_pollution",
    } <= _names(findings, "(Node guard)") | _names(findings, "(Node)")
    assert {
        "artefact_json_missing",
        "artefact_json_not_json",
        "artefact_json_wrong_types",
        "artefact_json_absolute_runnable",
        "artefact_json_dotdot_runnable",
        "upload_announced_as_another_plugin",
        "egress_production_host_with_port",
    } <= _names(findings, UPLOAD)
    assert {"deep_json_rollback", "slow_headers", "metrics_without_credential"} <= _names(
        findings, "(client)"
    )
    assert {"tenant_header", "tenant_with_a_forged_grant"} <= _names(findings, "(Python plugin)")
    contained = {
        "isolated_python",
        "curl_empty_env",
        "node_empty_env",
        "udp_bare_child",
        "simulator_environ",
        "credentials_file",
        "other_tree_walking_up",
        "other_tree_by_prefix",
        "other_tree_read",
        "other_tree_write",
        "own_tree_write",
        "signal_other_plugin",
        "proc_other_processes",
    }
    assert {f"{name}_from_python" for name in {*contained, "ctypes_connect_loopback"}} <= _names(
        findings, "containment (Python plugin)"
    )
    assert {f"{name}_from_node" for name in {*contained, "empty_env_child_loopback"}} <= _names(
        findings, "containment (Node plugin)"
    )


@pytest.mark.parametrize(("plugin", "runtime"), [(PYTHON_ID, "Python"), (NODE_ID, "Node")])
def test_each_guard_block_is_counted_and_audited(
    findings: Findings, plugin: str, runtime: str
) -> None:
    rows = [
        row
        for row in findings.audit
        if row["action"] == "egress.blocked" and row["plugin"] == plugin
    ]
    # Every refusal the guard made reached the simulator: counted, then audited.
    reported = blocks_reported(findings.attempts, f"({runtime} guard)") + blocks_reported(
        findings.attempts, f"({runtime})"
    )
    assert reported > 0
    assert len(rows) >= reported, [row["details"] for row in rows]
    assert egress_metric(findings.metrics, plugin) == len(rows)
    routes = {row["details"]["route"] for row in rows}
    reasons = {row["details"]["reason"] for row in rows}
    assert {"production_host", "egress_not_allowed", "guard_protected"} <= reasons
    if runtime == "Python":
        assert {"socket.sendmsg", "gc.get_objects", "sys.addaudithook"} <= routes
    else:
        assert {"net.connect", "process.binding('tcp_wrap')", "dns.queryA"} <= routes


def test_tenant_refusals_are_counted_and_audited(findings: Findings) -> None:
    def tenant_rows(plugin: str) -> list[dict[str, Any]]:
        return [
            row
            for row in findings.audit
            if row["action"] == "permission.denied"
            and row["plugin"] == plugin
            and row["details"]["scope"] == "tenant"
        ]

    for plugin in (PYTHON_ID, NODE_ID):
        assert len(tenant_rows(plugin)) == 3
        line = next(
            ln
            for ln in findings.metrics.splitlines()
            if ln.startswith("debug_permission_denied_total{")
            and f'plugin="{plugin}"' in ln
            and 'scope="tenant"' in ln
        )
        assert float(line.rsplit(" ", 1)[1]) == 3


def test_refused_uploads_are_recorded_with_their_codes(findings: Findings) -> None:
    reasons = [
        row["details"].get("reason") for row in findings.audit if row["action"] == "reload.blocked"
    ]
    assert reasons.count("artefact_info_invalid") == 5
    assert reasons.count("plugin_mismatch") == 1
    assert reasons.count("egress_production") == 2
    details = {a.name: a.detail for a in findings.attempts if a.area == UPLOAD}
    assert details["artefact_json_missing"].startswith("422 artefact_info_invalid")
    assert details["upload_announced_as_another_plugin"].startswith("409 plugin_mismatch")
    assert details["egress_production_host_with_port"].startswith("422 egress_production")
