"""The long-running canary: scheduled rounds, alerts, change intake and metrics."""
