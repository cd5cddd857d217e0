"""Results and scores partitioned by month on PostgreSQL; scores carry their result's start time;
covering indexes for the rollups compare and reports read.

PostgreSQL: both tables are rebuilt as range-partitioned tables (one partition per month of the
stored data, `MONTHS_AHEAD` months ahead, and a DEFAULT partition), the rows copied across in
one transaction, and the id sequences carried on. A partitioned table's keys must hold the
partition key, so the primary keys become (id, started_at) and the scores' foreign key to
results goes (see `canary.store.models.ScoreRow`). SQLite keeps plain tables and gets the same
columns and constraints, so both backends run the same queries.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Time = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

RESULT_COLUMNS = (
    "id, run_id, probe_id, endpoint_id, cohort_id, session_id, repeat_index, started_at, "
    "latency_ms, attempts, status_code, error_kind, error_detail, served_by, request, "
    "output_text, finish_reason, response, pruned_at"
)
SCORE_COLUMNS = (
    "id, result_id, detector, detector_version, metric, value, flagged, evidence, created_at"
)
OLD_UNIQUE = "uq_scores_result_id_detector_metric"
NEW_UNIQUE = "uq_scores_result_id_detector_metric_result_started_at"
FOREIGN_KEY = "fk_scores_result_id_results"
OLD_RUN_INDEX = ("run_id",)
#: A run's endpoints (one index seek per endpoint) and its result and error counts, read from
#: the index alone.
RUN_INDEX = ("run_id", "endpoint_id", "error_kind")


def _result_indexes(run_index: tuple[str, ...]) -> list[tuple[str, ...]]:
    return [("cohort_id", "started_at"), ("endpoint_id", "started_at"), run_index,
            ("started_at",)]  # fmt: skip


def _run_index(old: tuple[str, ...], new: tuple[str, ...]) -> None:
    op.drop_index(op.f(f"ix_results_{'_'.join(old)}"), table_name="results")
    op.create_index(op.f(f"ix_results_{'_'.join(new)}"), "results", list(new))


def _partition_by(column: str, partitioned: bool) -> dict[str, Any]:
    return {"postgresql_partition_by": f"RANGE ({column})"} if partitioned else {}


def _results_table(partitioned: bool) -> None:
    op.create_table(
        "results",
        sa.Column("id", BigId, nullable=False),
        sa.Column("run_id", BigId, nullable=False),
        sa.Column("probe_id", BigId, nullable=False),
        sa.Column("endpoint_id", BigId, nullable=False),
        sa.Column("cohort_id", BigId, nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("repeat_index", sa.Integer(), nullable=False),
        sa.Column("started_at", Time, nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error_kind", sa.String(32), nullable=True),
        sa.Column("error_detail", sa.Text(), nullable=True),
        sa.Column("served_by", sa.String(255), nullable=True),
        sa.Column("request", Json, nullable=False),
        sa.Column("output_text", sa.Text(), nullable=True),
        sa.Column("finish_reason", sa.String(32), nullable=True),
        sa.Column("response", Json, nullable=True),
        sa.Column("pruned_at", Time, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_results")),  # (id, started_at) partitioned
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_results_run_id_runs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["probe_id"], ["probes.id"], name=op.f("fk_results_probe_id_probes")
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"], ["endpoints.id"], name=op.f("fk_results_endpoint_id_endpoints")
        ),
        sa.ForeignKeyConstraint(
            ["cohort_id"], ["cohorts.id"], name=op.f("fk_results_cohort_id_cohorts")
        ),
        **_partition_by("started_at", partitioned),
    )
    for columns in _result_indexes(RUN_INDEX if partitioned else OLD_RUN_INDEX):
        op.create_index(op.f(f"ix_results_{'_'.join(columns)}"), "results", list(columns))


def _scores_table(partitioned: bool) -> None:
    columns: list[sa.schema.SchemaItem] = [
        sa.Column("id", BigId, nullable=False),
        sa.Column("result_id", BigId, nullable=False),
        sa.Column("detector", sa.String(64), nullable=False),
        sa.Column("detector_version", sa.String(32), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("evidence", Json, nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scores")),
    ]
    if partitioned:
        columns += [
            sa.Column("result_started_at", Time, nullable=False),
            sa.UniqueConstraint(
                "result_id", "detector", "metric", "result_started_at", name=op.f(NEW_UNIQUE)
            ),
        ]
    else:
        columns += [
            sa.ForeignKeyConstraint(
                ["result_id"], ["results.id"], name=op.f(FOREIGN_KEY), ondelete="CASCADE"
            ),
            sa.UniqueConstraint("result_id", "detector", "metric", name=op.f(OLD_UNIQUE)),
        ]
    op.create_table(
        "scores",
        *columns,
        **_partition_by("result_started_at", partitioned),
    )
    op.create_index(op.f("ix_scores_detector_metric"), "scores", ["detector", "metric"])


def _set_aside(table: str) -> None:
    """Rename ``table`` (and its id sequence) out of the way and drop its constraints and
    indexes, whose names the rebuilt table takes."""
    conn = op.get_bind()
    old = f"{table}_rebuilt_from"
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    op.execute(f"ALTER SEQUENCE IF EXISTS {table}_id_seq RENAME TO {old}_id_seq")
    names = conn.execute(
        sa.text(
            "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(:t) "
            "ORDER BY contype = 'p'"  # foreign keys and uniques before the primary key
        ),
        {"t": old},
    ).scalars()
    for name in list(names):
        op.execute(f'ALTER TABLE {old} DROP CONSTRAINT "{name}" CASCADE')
    for name in list(
        conn.execute(
            sa.text("SELECT indexname FROM pg_indexes WHERE tablename = :t"), {"t": old}
        ).scalars()
    ):
        op.execute(f'DROP INDEX "{name}"')


def _carry_sequence(table: str) -> None:
    op.execute(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
        f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
    )


#: What the covering rollup indexes hold after (aggregation, metric, run or day).
COVERED = ["cohort_id", "fingerprint", "probe_key", "bucket", "n", "k", "sessions",
           "flagged_sessions"]  # fmt: skip


def _rollup_indexes(covering: bool) -> None:
    """Swap the (aggregation, metric, run/day) rollup indexes for covering ones, or back."""
    for key in ("run_id", "day_id"):
        plain, cover = op.f(f"ix_rollups_aggregation_metric_{key}"), f"ix_rollups_cover_{key}"
        op.drop_index(plain if covering else cover, table_name="rollups")
        if covering:
            op.create_index(cover, "rollups", ["aggregation", "metric", key, *COVERED])
        else:
            op.create_index(plain, "rollups", ["aggregation", "metric", key])


def upgrade() -> None:
    _rollup_indexes(covering=True)
    if op.get_bind().dialect.name != "postgresql":
        _run_index(OLD_RUN_INDEX, RUN_INDEX)
        op.add_column("scores", sa.Column("result_started_at", Time, nullable=True))
        op.execute(
            "UPDATE scores SET result_started_at = "
            "(SELECT started_at FROM results WHERE results.id = scores.result_id)"
        )
        with op.batch_alter_table("scores") as batch:
            batch.drop_constraint(op.f(FOREIGN_KEY), type_="foreignkey")
            batch.drop_constraint(op.f(OLD_UNIQUE), type_="unique")
            batch.alter_column("result_started_at", existing_type=Time, nullable=False)
            batch.create_unique_constraint(
                op.f(NEW_UNIQUE), ["result_id", "detector", "metric", "result_started_at"]
            )
        return
    from canary.store.partitions import create_default_partitions, ensure_month_partitions

    conn = op.get_bind()
    _set_aside("scores")
    _set_aside("results")
    _results_table(partitioned=True)
    _scores_table(partitioned=True)
    create_default_partitions(conn)
    stored = conn.execute(
        sa.text(
            "SELECT DISTINCT to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM') "
            "FROM results_rebuilt_from"
        )
    ).scalars()
    months = [datetime.strptime(m, "%Y-%m").replace(tzinfo=UTC) for m in stored]
    ensure_month_partitions(conn, months, ahead_of=datetime.now(UTC))
    op.execute(
        f"INSERT INTO results ({RESULT_COLUMNS}) SELECT {RESULT_COLUMNS} FROM results_rebuilt_from"
    )
    op.execute(
        f"INSERT INTO scores ({SCORE_COLUMNS}, result_started_at) "
        f"SELECT {', '.join(f's.{c.strip()}' for c in SCORE_COLUMNS.split(','))}, r.started_at "
        "FROM scores_rebuilt_from s JOIN results_rebuilt_from r ON r.id = s.result_id"
    )
    for table in ("scores", "results"):
        _carry_sequence(table)
        op.execute(f"DROP TABLE {table}_rebuilt_from")


def downgrade() -> None:
    _rollup_indexes(covering=False)
    if op.get_bind().dialect.name != "postgresql":
        _run_index(RUN_INDEX, OLD_RUN_INDEX)
        with op.batch_alter_table("scores") as batch:
            batch.drop_constraint(op.f(NEW_UNIQUE), type_="unique")
            batch.create_unique_constraint(op.f(OLD_UNIQUE), ["result_id", "detector", "metric"])
            batch.create_foreign_key(
                op.f(FOREIGN_KEY), "results", ["result_id"], ["id"], ondelete="CASCADE"
            )
            batch.drop_column("result_started_at")
        return
    _set_aside("scores")
    _set_aside("results")
    _results_table(partitioned=False)
    _scores_table(partitioned=False)
    op.execute(
        f"INSERT INTO results ({RESULT_COLUMNS}) SELECT {RESULT_COLUMNS} FROM results_rebuilt_from"
    )
    op.execute(
        f"INSERT INTO scores ({SCORE_COLUMNS}) SELECT {SCORE_COLUMNS} FROM scores_rebuilt_from"
    )
    for table in ("scores", "results"):
        _carry_sequence(table)
        op.execute(f"DROP TABLE {table}_rebuilt_from CASCADE")  # with its partitions
