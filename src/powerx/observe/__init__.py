"""Observability: telemetry, metrics, events, alerts, logs and the audit trail."""
