"""Monthly range partitions of `results` and `scores` on PostgreSQL.

At production size (hundreds of millions of results a year) the raw tables are partitioned by
the result's start time, one partition per calendar month, so that time-window queries touch
only their months and retention drops a month with one DDL statement instead of deleting
millions of rows. `scores` carries its result's `result_started_at` so both tables split on the
same month boundaries. Each table also has a DEFAULT partition: a row for a month that has no
partition (an old backfill, evidence kept after its month was dropped) is stored there, never
refused.

The store calls `ensure_month_partitions` before inserting results of a month it has not seen.
SQLite has no partitions; every function here is a no-op there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Connection, PrimaryKeyConstraint, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import DDLCompiler

#: Partitioned table → its partition key (a timestamp column).
PARTITIONED: dict[str, str] = {"results": "started_at", "scores": "result_started_at"}
#: Partitions to create ahead of the current month, so a new month never starts in DEFAULT.
MONTHS_AHEAD = 2
#: Serialises partition DDL between daemons sharing one database ("canary-p" in ASCII).
PARTITION_LOCK = 0x63616E6172792D70

_PARTITION_NAME = re.compile(r"^(results|scores)_(p\d{6}|default)$")


def is_partition_name(name: str | None) -> bool:
    """Whether ``name`` is one of our partitions (schema comparisons skip them: the ORM
    declares the partitioned parents, not their months)."""
    return bool(name and _PARTITION_NAME.match(name))


@compiles(PrimaryKeyConstraint, "postgresql")
def _partitioned_primary_key(
    constraint: PrimaryKeyConstraint, compiler: DDLCompiler, **kw: object
) -> str:
    """A partitioned table's primary key must hold its partition key: (id, started_at) there,
    (id) everywhere else (SQLite's rowid alias)."""
    sql = compiler.visit_primary_key_constraint(constraint, **kw)
    scheme = constraint.table.dialect_options["postgresql"].get("partition_by") or ""
    match = re.fullmatch(r"RANGE \((\w+)\)", scheme)
    key = match[1] if match else None
    if key is None or key in constraint.columns or not sql:
        return sql
    return sql.replace(")", f", {compiler.preparer.quote(key)})", 1)


def month_start(moment: datetime) -> datetime:
    """The first instant (UTC) of ``moment``'s month."""
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def next_month(month: datetime) -> datetime:
    return datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)


def partition_name(table: str, month: datetime) -> str:
    return f"{table}_p{month.year:04d}{month.month:02d}"


def is_partitioned(conn: Connection) -> bool:
    """Whether this database's results table is partitioned (PostgreSQL at head)."""
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.execute(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass('results')")
    ).scalar_one_or_none()
    return kind == "p"


def existing_months(conn: Connection, table: str) -> set[datetime]:
    """The months that have a partition of ``table``."""
    names = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:table)"
        ),
        {"table": table},
    ).scalars()
    months = set()
    for name in names:
        match = re.fullmatch(rf"{table}_p(\d{{4}})(\d{{2}})", name)
        if match:
            months.add(datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC))
    return months


def ensure_month_partitions(
    conn: Connection, moments: Iterable[datetime], *, ahead_of: datetime | None = None
) -> list[datetime]:
    """Create the month partitions of both tables that hold ``moments`` (and, with
    ``ahead_of``, that month and `MONTHS_AHEAD` after it), in the caller's transaction;
    returns the months created.

    A month whose rows already sit in the DEFAULT partition is left there: attaching a
    partition over them would mean moving rows (and their scores) inside a writer's
    transaction, for a month that is by then history.
    """
    if not is_partitioned(conn):
        return []
    wanted = {month_start(m) for m in moments}
    if ahead_of is not None:
        month = month_start(ahead_of)
        for _ in range(MONTHS_AHEAD + 1):
            wanted.add(month)
            month = next_month(month)
    missing = sorted(wanted - existing_months(conn, "results"))
    if not missing:
        return []
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PARTITION_LOCK})
    created = []
    for month in sorted(wanted - existing_months(conn, "results")):
        if _default_holds(conn, month):
            continue
        for table in PARTITIONED:
            conn.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {partition_name(table, month)} "
                    f"PARTITION OF {table} FOR VALUES FROM ('{month.isoformat()}') "
                    f"TO ('{next_month(month).isoformat()}')"
                )
            )
        created.append(month)
    return created


def _default_holds(conn: Connection, month: datetime) -> bool:
    for table, key in PARTITIONED.items():
        found = conn.execute(
            text(f"SELECT 1 FROM {table}_default WHERE {key} >= :lo AND {key} < :hi LIMIT 1"),
            {"lo": month, "hi": next_month(month)},
        ).first()
        if found is not None:
            return True
    return False


def create_default_partitions(conn: Connection) -> None:
    """The DEFAULT partition of each partitioned table (a migration's first step)."""
    for table in PARTITIONED:
        conn.execute(
            text(f"CREATE TABLE IF NOT EXISTS {table}_default PARTITION OF {table} DEFAULT")
        )


def droppable_months(conn: Connection, before: datetime) -> list[datetime]:
    """Months of ``results`` partitions that end on or before ``before``, oldest first."""
    if not is_partitioned(conn):
        return []
    return sorted(m for m in existing_months(conn, "results") if next_month(m) <= before)


def drop_month(conn: Connection, month: datetime, keep_result_ids: Iterable[int]) -> int:
    """Drop ``month``'s partitions of scores and results in the caller's transaction, first
    setting aside the results in ``keep_result_ids`` (alert evidence) with their scores, which
    go back into the DEFAULT partitions; returns how many results were dropped."""
    keep = sorted(set(keep_result_ids))
    results, scores = partition_name("results", month), partition_name("scores", month)
    count = int(conn.execute(text(f"SELECT count(*) FROM {results}")).scalar_one())
    conn.execute(text(f"CREATE TEMP TABLE kept_results ON COMMIT DROP AS SELECT * FROM {results} "
                      "WHERE id = ANY(:ids)"), {"ids": keep})  # fmt: skip
    conn.execute(text(f"CREATE TEMP TABLE kept_scores ON COMMIT DROP AS SELECT * FROM {scores} "
                      "WHERE result_id = ANY(:ids)"), {"ids": keep})  # fmt: skip
    for table, partition in (("scores", scores), ("results", results)):
        conn.execute(text(f"ALTER TABLE {table} DETACH PARTITION {partition}"))
        conn.execute(text(f"DROP TABLE {partition}"))
    conn.execute(text("INSERT INTO results SELECT * FROM kept_results"))
    conn.execute(text("INSERT INTO scores SELECT * FROM kept_scores"))
    kept = int(conn.execute(text("SELECT count(*) FROM kept_results")).scalar_one())
    conn.execute(text("DROP TABLE kept_results"))
    conn.execute(text("DROP TABLE kept_scores"))
    return count - kept
