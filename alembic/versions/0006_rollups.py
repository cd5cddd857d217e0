"""Rollups: each finished run's sufficient statistics per cohort × metric × detector version,
and whole days of them compacted.

Built here for the runs already stored, from their raw rows under today's declared metrics
(`canary.stats.summaries.summary_spec`), so compare, reports and cohorts stop re-reading history.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Time = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rollup_days",
        sa.Column("id", BigId, nullable=False),
        sa.Column("day", Time, nullable=False),
        sa.Column("suite_id", BigId, nullable=False),
        sa.Column("spec_key", sa.String(length=64), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("first_started_at", Time, nullable=True),
        sa.Column("last_started_at", Time, nullable=True),
        sa.Column("built_at", Time, nullable=False),
        sa.ForeignKeyConstraint(
            ["suite_id"],
            ["suites.id"],
            name=op.f("fk_rollup_days_suite_id_suites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollup_days")),
        sa.UniqueConstraint("day", "suite_id", name=op.f("uq_rollup_days_day_suite_id")),
    )
    op.create_table(
        "rollup_runs",
        sa.Column("run_id", BigId, nullable=False),
        sa.Column("spec_key", sa.String(length=64), nullable=False),
        sa.Column("first_started_at", Time, nullable=True),
        sa.Column("last_started_at", Time, nullable=True),
        sa.Column("results", sa.BigInteger(), nullable=False),
        sa.Column("day_id", BigId, nullable=True),
        sa.Column("run_rows", sa.Boolean(), nullable=False),
        sa.Column("built_at", Time, nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_rollup_runs_run_id_runs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["day_id"],
            ["rollup_days.id"],
            name=op.f("fk_rollup_runs_day_id_rollup_days"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_rollup_runs")),
    )
    op.create_index(op.f("ix_rollup_runs_day_id"), "rollup_runs", ["day_id"])
    op.create_table(
        "rollups",
        sa.Column("id", BigId, nullable=False),
        sa.Column("run_id", BigId, nullable=True),
        sa.Column("day_id", BigId, nullable=True),
        sa.Column("cohort_id", BigId, nullable=False),
        sa.Column("aggregation", sa.String(length=16), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("probe_key", sa.String(length=128), nullable=False),
        sa.Column("bucket", sa.Text(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("k", sa.BigInteger(), nullable=False),
        sa.Column("sessions", sa.BigInteger(), nullable=False),
        sa.Column("flagged_sessions", sa.BigInteger(), nullable=False),
        sa.Column("first_started_at", Time, nullable=True),
        sa.Column("last_started_at", Time, nullable=True),
        sa.ForeignKeyConstraint(
            ["cohort_id"], ["cohorts.id"], name=op.f("fk_rollups_cohort_id_cohorts")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_rollups_run_id_runs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["day_id"],
            ["rollup_days.id"],
            name=op.f("fk_rollups_day_id_rollup_days"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollups")),
    )
    op.create_index(op.f("ix_rollups_run_id"), "rollups", ["run_id"])
    op.create_index(op.f("ix_rollups_day_id"), "rollups", ["day_id"])
    for column in ("run_id", "day_id"):
        op.create_index(
            op.f(f"ix_rollups_aggregation_metric_{column}"),
            "rollups",
            ["aggregation", "metric", column],
        )
    _build_existing()


def _build_existing() -> None:
    from canary.stats.summaries import summary_spec
    from canary.store.rollups import BUILD_BATCH, build_rollups_on, rollup_spec, stale_run_ids

    conn = op.get_bind()
    spec = rollup_spec(summary_spec())
    todo = stale_run_ids(conn, spec)
    for start in range(0, len(todo), BUILD_BATCH):
        build_rollups_on(conn, spec, todo[start : start + BUILD_BATCH])
    # Days (and, from 0008, hours) are compacted by the next `build_rollups`: today's
    # compaction reads columns later revisions add, so it cannot run at this revision.


def downgrade() -> None:
    op.drop_index(op.f("ix_rollups_aggregation_metric_day_id"), table_name="rollups")
    op.drop_index(op.f("ix_rollups_aggregation_metric_run_id"), table_name="rollups")
    op.drop_index(op.f("ix_rollups_day_id"), table_name="rollups")
    op.drop_index(op.f("ix_rollups_run_id"), table_name="rollups")
    op.drop_table("rollups")
    op.drop_index(op.f("ix_rollup_runs_day_id"), table_name="rollup_runs")
    op.drop_table("rollup_runs")
    op.drop_table("rollup_days")
