"""Hour and week rollups: `rollup_days` rows also sum one hour of a suite's runs (``hours`` =
1) or one week of its days (``hours`` = 168); `rollup_runs.hour_id` says which hour sums a run;
`rollup_runs.errors` counts a run's failed results, so a run's summary is read without its
results.

A window that cuts a recent day (every `--since 7d` does, twice) is read as that day's whole
hours and a few rounds instead of up to 288 rounds per day, and a year as 52 weeks instead of
365 days. No hour or week exists after the upgrade; the next `build_rollups` (`canary score`,
a daemon round) compacts them. The downgrade drops them; days and runs are untouched.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OLD_UNIQUE = "uq_rollup_days_day_suite_id"
NEW_UNIQUE = "uq_rollup_days_day_suite_id_hours"
HOUR_FK = "fk_rollup_runs_hour_id_rollup_days"
HOUR_INDEX = "ix_rollup_runs_hour_id_first_started_at"


def upgrade() -> None:
    with op.batch_alter_table("rollup_days") as batch:
        batch.add_column(sa.Column("hours", sa.Integer(), server_default="24", nullable=False))
        batch.drop_constraint(op.f(OLD_UNIQUE), type_="unique")
        batch.create_unique_constraint(op.f(NEW_UNIQUE), ["day", "suite_id", "hours"])
    with op.batch_alter_table("rollup_runs") as batch:
        batch.add_column(sa.Column("hour_id", BigId, nullable=True))
        batch.create_foreign_key(
            op.f(HOUR_FK), "rollup_days", ["hour_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index(op.f(HOUR_INDEX), ["hour_id", "first_started_at"])
        batch.add_column(sa.Column("errors", sa.BigInteger(), nullable=True))
    # Runs that still have their own rows get their error count from them; the others stay
    # unknown (NULL) and are counted from their results.
    op.execute(
        "UPDATE rollup_runs SET errors = (SELECT coalesce(sum(r.k), 0) FROM rollups r"
        " WHERE r.run_id = rollup_runs.run_id AND r.aggregation = 'errors')"
        " WHERE run_rows"
    )


def downgrade() -> None:
    hours = "SELECT id FROM rollup_days WHERE hours <> 24"
    op.execute(f"DELETE FROM rollups WHERE day_id IN ({hours})")
    op.execute("UPDATE rollup_runs SET hour_id = NULL WHERE hour_id IS NOT NULL")
    op.execute(f"DELETE FROM rollup_days WHERE id IN ({hours})")
    with op.batch_alter_table("rollup_runs") as batch:
        batch.drop_column("errors")
        batch.drop_index(op.f(HOUR_INDEX))
        batch.drop_constraint(op.f(HOUR_FK), type_="foreignkey")
        batch.drop_column("hour_id")
    with op.batch_alter_table("rollup_days") as batch:
        batch.drop_constraint(op.f(NEW_UNIQUE), type_="unique")
        batch.create_unique_constraint(op.f(OLD_UNIQUE), ["day", "suite_id"])
        batch.drop_column("hours")
