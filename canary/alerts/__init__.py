"""Alerts: CUSUM monitors → the alert lifecycle, change attribution, the outbox and its sinks."""
