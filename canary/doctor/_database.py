"""Database checks: reachable, at the schema head, and writable, on SQLite and PostgreSQL.

The store answers (`canary.store.health`); this module turns its answers into checks with a
fix each. Nothing here changes the database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from canary.doctor._check import Check

if TYPE_CHECKING:
    from canary.store import Store
    from canary.store.migrate import SchemaStatus

_UPGRADE = "run `canary db upgrade`"


def check_database(store: Store, timeout_s: float) -> tuple[list[Check], bool]:
    """Reachability, schema revision and a rolled-back write; True when the schema is at head
    (so the checks that read canary's tables can run)."""
    from canary.store.health import probe_database, probe_write

    probe = probe_database(store)
    if probe.missing_file is not None:
        detail = f"{probe.where}: the file {probe.missing_file} does not exist"
        return [Check("database", "fail", detail, f"{_UPGRADE} to create it", "database")], False
    if probe.error is not None or probe.schema is None:
        detail = f"cannot connect to {probe.where}: {probe.error}"
        fix = "is the server running and the URL right? check --db or CANARY_DATABASE_URL"
        return [Check("database", "fail", detail, fix, "database")], False
    server = f"{probe.server}, {probe.elapsed_ms:.0f} ms"
    checks = [Check("database", "ok", f"{probe.where} reachable ({server})", area="database")]
    schema = _schema_check(probe.schema)
    checks.append(schema)
    if schema.status != "ok":
        return checks, False
    written = probe_write(store, timeout_s)
    if written.error is not None:
        detail = f"cannot write: {written.error}"
        fix = "grant this user INSERT, UPDATE and DELETE on canary's tables (or a writable file)"
        checks.append(Check("database write", "fail", detail, fix, "database"))
    else:
        detail = f"an insert works (rolled back, {written.elapsed_ms:.0f} ms)"
        checks.append(Check("database write", "ok", detail, area="database"))
    return checks, True


def _schema_check(status: SchemaStatus) -> Check:
    revision, head = status.revision, status.head
    if status.state == "at_head":
        return Check("schema", "ok", f"at head revision {head}", area="database")
    if status.state == "foreign":
        detail = "canary tables without an alembic_version table: not made by canary's migrations"
        fix = "point --db at a canary database or an empty one"
    elif status.state == "empty":
        detail, fix = "empty: no canary schema yet", f"{_UPGRADE} to create it"
    elif status.state == "behind":
        detail, fix = f"at revision {revision or 'base'}, this canary needs {head}", _UPGRADE
    else:
        detail = f"at revision {revision}, newer than this canary knows (head {head})"
        fix = "upgrade canary (`pip install -U canary`)"
    return Check("schema", "fail", detail, fix, "database")
