"""The daemon's tables: schedule slots, monitors, alerts, the notification outbox; retention.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("evaluated_at", Time, nullable=True))
    with op.batch_alter_table("results") as batch:
        batch.add_column(sa.Column("pruned_at", Time, nullable=True))

    op.create_table(
        "schedule_slots",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("schedule", sa.String(160), nullable=False),
        sa.Column("slot_at", Time, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("lease_until", Time, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("run_id", BigId, nullable=True),
        sa.Column("claimed_at", Time, nullable=False),
        sa.Column("finished_at", Time, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_slots")),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_schedule_slots_run_id_runs"),
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("schedule", "slot_at", name=op.f("uq_schedule_slots_schedule_slot_at")),
    )
    op.create_index(
        op.f("ix_schedule_slots_status_lease_until"), "schedule_slots", ["status", "lease_until"]
    )

    op.create_table(
        "monitors",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("labels", Json, nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("state", Json, nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitors")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_monitors_fingerprint")),
    )

    op.create_table(
        "alerts",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("labels", Json, nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("pending_at", Time, nullable=False),
        sa.Column("fired_at", Time, nullable=True),
        sa.Column("resolved_at", Time, nullable=True),
        sa.Column("onset_at", Time, nullable=True),
        sa.Column("change_id", sa.String(128), nullable=True),
        sa.Column("baseline_rate", sa.Float(), nullable=False),
        sa.Column("margin", sa.Float(), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("evidence_ids", Json, nullable=False),
        sa.Column("impact", Json, nullable=True),
        sa.Column("detail", Json, nullable=False),
        sa.Column("last_evaluated_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["changes.change_id"],
            name=op.f("fk_alerts_change_id_changes"),
            ondelete="SET NULL",
        ),
    )
    op.create_index(op.f("ix_alerts_fingerprint_status"), "alerts", ["fingerprint", "status"])
    op.create_index(op.f("ix_alerts_change_id"), "alerts", ["change_id"])

    op.create_table(
        "notifications",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("group_key", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index(op.f("ix_notifications_created_at"), "notifications", ["created_at"])

    op.create_table(
        "deliveries",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("notification_id", BigId, nullable=False),
        sa.Column("sink", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", Time, nullable=False),
        sa.Column("locked_until", Time, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", Time, nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_deliveries_notification_id_notifications"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "notification_id", "sink", name=op.f("uq_deliveries_notification_id_sink")
        ),
    )
    op.create_index(
        op.f("ix_deliveries_status_next_attempt_at"), "deliveries", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_deliveries_status_next_attempt_at"), table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_index(op.f("ix_notifications_created_at"), table_name="notifications")
    op.drop_table("notifications")
    op.drop_index(op.f("ix_alerts_change_id"), table_name="alerts")
    op.drop_index(op.f("ix_alerts_fingerprint_status"), table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("monitors")
    op.drop_index(op.f("ix_schedule_slots_status_lease_until"), table_name="schedule_slots")
    op.drop_table("schedule_slots")
    with op.batch_alter_table("results") as batch:
        batch.drop_column("pruned_at")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("evaluated_at")
