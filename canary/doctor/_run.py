"""`run_checks`: every check in pipeline order, config first, each layer feeding the next."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from canary.doctor._check import Check, failure
from canary.doctor._config import check_baseline, check_config
from canary.doctor._daemon import check_daemon_health
from canary.doctor._database import check_database
from canary.doctor._endpoints import check_endpoints
from canary.doctor._reference import check_reference
from canary.doctor._sinks import check_sinks
from canary.errors import CanaryError, ConfigError


def run_checks(
    *,
    config: str | Path | None = None,
    fleet: str | Path | None = None,
    db: str | None = None,
    timeout_s: float = 5.0,
    now: datetime | None = None,
) -> list[Check]:
    """Check a canary installation: config, database, sinks, endpoints and daemon health.

    ``config`` is a daemon config (its fleet and sinks are checked too), ``fleet`` a fleet file
    alone; give at most one. The database is ``db``, else wherever canary would look
    (`resolve_database_url`). Each network step is bounded by ``timeout_s``. Nothing is
    created, sent to a sink, or left in the database; endpoints get one request of one token
    each.
    """
    from canary.store import resolve_database_url
    from canary.store.health import bounded_store

    if config is not None and fleet is not None:
        raise ConfigError("give --config or --fleet, not both; the daemon config names its fleet")
    now = now or datetime.now(UTC)
    loaded = check_config(
        Path(config) if config is not None else None, Path(fleet) if fleet is not None else None
    )
    checks = list(loaded.checks)
    try:
        url = resolve_database_url(db, loaded.database_url)
    except CanaryError as exc:
        checks.append(failure("database", exc, "database"))
    else:
        store = bounded_store(url, timeout_s)
        try:
            found, at_head = check_database(store, timeout_s)
            checks += found
            if at_head:
                if loaded.daemon is not None and loaded.daemon.alerts is not None:
                    checks.append(check_baseline(store, loaded.daemon.alerts.baseline))
                checks += check_daemon_health(store, loaded.daemon, now, loaded.daemon_path)
        finally:
            store.close()
    if loaded.daemon is not None:
        checks += check_sinks(loaded.daemon)
    if loaded.fleet is not None:
        reached = check_endpoints(loaded.fleet, timeout_s)
        checks += reached
        unreachable = {c.name.removeprefix("endpoint ") for c in reached if c.status == "fail"}
        checks += check_reference(
            loaded.fleet,
            timeout_s,
            skip=unreachable,
            fleet_dir=loaded.fleet_path.resolve().parent if loaded.fleet_path else None,
            daemon=loaded.daemon.reference if loaded.daemon else None,
            daemon_dir=loaded.daemon_path.resolve().parent if loaded.daemon_path else None,
        )
    return checks
