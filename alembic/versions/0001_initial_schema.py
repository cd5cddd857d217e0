"""Initial schema: endpoints, cohorts, suites, probes, runs, results, scores, reference outputs.

Written by hand to match canary/store/models.py at the time; names follow the models' naming
convention and are spelled out with op.f() so this file never depends on the models module.

Revision ID: 0001
Revises:
Create Date: 2024-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the model types: INTEGER on SQLite (the rowid alias), BIGINT elsewhere;
# JSONB on PostgreSQL; timezone-aware timestamps.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Time = sa.DateTime(timezone=True)


def _id() -> sa.Column[int]:
    return sa.Column("id", BigId, primary_key=True)


def upgrade() -> None:
    op.create_table(
        "endpoints",
        _id(),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("base_url", sa.String(1024), nullable=False),
        sa.Column("flavour", sa.String(64), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("labels", Json, nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endpoints")),
        sa.UniqueConstraint("name", name=op.f("uq_endpoints_name")),
    )
    op.create_table(
        "cohorts",
        _id(),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("labels", Json, nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cohorts")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_cohorts_fingerprint")),
    )
    op.create_table(
        "suites",
        _id(),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suites")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_suites_name_version")),
    )
    op.create_table(
        "probes",
        _id(),
        sa.Column("suite_id", BigId, nullable=False),
        sa.Column("probe_key", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("spec", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_probes")),
        sa.ForeignKeyConstraint(
            ["suite_id"], ["suites.id"], name=op.f("fk_probes_suite_id_suites"), ondelete="CASCADE"
        ),
        sa.UniqueConstraint("suite_id", "probe_key", name=op.f("uq_probes_suite_id_probe_key")),
    )
    op.create_table(
        "runs",
        _id(),
        sa.Column("suite_id", BigId, nullable=False),
        sa.Column("started_at", Time, nullable=False),
        sa.Column("finished_at", Time, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("load_shape", sa.String(32), nullable=False),
        sa.Column("selection", Json, nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.ForeignKeyConstraint(["suite_id"], ["suites.id"], name=op.f("fk_runs_suite_id_suites")),
    )
    op.create_index(op.f("ix_runs_started_at"), "runs", ["started_at"])
    op.create_table(
        "results",
        _id(),
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_results")),
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
    )
    op.create_index(op.f("ix_results_cohort_id_started_at"), "results", ["cohort_id", "started_at"])
    op.create_index(
        op.f("ix_results_endpoint_id_started_at"), "results", ["endpoint_id", "started_at"]
    )
    op.create_index(op.f("ix_results_run_id"), "results", ["run_id"])
    op.create_index(op.f("ix_results_started_at"), "results", ["started_at"])
    op.create_table(
        "scores",
        _id(),
        sa.Column("result_id", BigId, nullable=False),
        sa.Column("detector", sa.String(64), nullable=False),
        sa.Column("detector_version", sa.String(32), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("evidence", Json, nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scores")),
        sa.ForeignKeyConstraint(
            ["result_id"],
            ["results.id"],
            name=op.f("fk_scores_result_id_results"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "result_id", "detector", "metric", name=op.f("uq_scores_result_id_detector_metric")
        ),
    )
    op.create_index(op.f("ix_scores_detector_metric"), "scores", ["detector", "metric"])
    op.create_table(
        "reference_outputs",
        _id(),
        sa.Column("model_fingerprint", sa.String(64), nullable=False),
        sa.Column("cache_key", sa.String(64), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("params", Json, nullable=False),
        sa.Column("output_text", sa.Text(), nullable=False),
        sa.Column("tokens", Json, nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reference_outputs")),
        sa.UniqueConstraint(
            "model_fingerprint",
            "cache_key",
            name=op.f("uq_reference_outputs_model_fingerprint_cache_key"),
        ),
    )


def downgrade() -> None:
    # Children before parents; dropping a table drops its indexes and constraints.
    for table in (
        "reference_outputs",
        "scores",
        "results",
        "runs",
        "probes",
        "suites",
        "cohorts",
        "endpoints",
    ):
        op.drop_table(table)
