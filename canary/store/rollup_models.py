"""The rollup tables: sufficient statistics of finished runs and of compacted days.

See `canary.store.rollups`; every change here is an alembic revision, like `models`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from canary.store.columns import Base, BigId, UTCDateTime, utcnow


class RollupRunRow(Base):
    """A run whose results are summarised in `rollups`, and under which summary spec.

    Written in the same transaction as its rollup rows; deleted in the same transaction as any
    score or result of the run changes (`save_scores`, `save_results`), so a row here always
    means "the rollups of this run are exactly its raw rows' GROUP BYs". Readers use a run's
    rollups only when its ``spec_key`` is today's and the window does not cut the run.
    """

    __tablename__ = "rollup_runs"
    __table_args__ = (
        Index(None, "day_id"),
        # Hour compaction looks for recent runs not yet summed by an hour.
        Index(None, "hour_id", "first_started_at"),
    )

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    spec_key: Mapped[str] = mapped_column(String(64))
    """Hash of the bins and category keys the rollups were built with."""
    first_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """The run's results' start times: a time window uses the rollups only if it holds both."""
    results: Mapped[int] = mapped_column(BigInteger, default=0)
    day_id: Mapped[int | None] = mapped_column(
        ForeignKey("rollup_days.id", ondelete="SET NULL"), nullable=True
    )
    """The day rollup that also sums this run, once its day is compacted."""
    run_rows: Mapped[bool] = mapped_column(Boolean, default=True)
    """Whether the run's own rollup rows are kept (dropped `KEEP_RUN_ROLLUPS` after its day
    is compacted; the day answers for it then)."""
    built_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    hour_id: Mapped[int | None] = mapped_column(
        ForeignKey("rollup_days.id", ondelete="SET NULL"), nullable=True
    )
    """The hour rollup that also sums this run, while its hour is kept (`KEEP_RUN_ROLLUPS`)."""
    errors: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """How many of the run's results failed (with ``results``: a run's counts without reading
    its results); none for runs rolled up before revision 0008 whose own rows are gone."""


class RollupDayRow(Base):
    """One UTC day, hour or week of one suite's runs, summed: a year is read as 52 weeks per
    suite, and a window that cuts a recent day as its whole hours, not as its rounds.

    Days and hours are compacted from their runs' rollups once every run of them has fresh
    ones, weeks from their days once every run of the week is in a day; each is dropped when
    anything it sums changes. Hours are kept as long as their runs' own rows.
    """

    __tablename__ = "rollup_days"
    __table_args__ = (UniqueConstraint("day", "suite_id", "hours"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[datetime] = mapped_column(UTCDateTime)
    """Start (UTC) of the day, hour or week (runs belong to the period their first result
    started in)."""
    suite_id: Mapped[int] = mapped_column(ForeignKey("suites.id", ondelete="CASCADE"))
    spec_key: Mapped[str] = mapped_column(String(64))
    runs: Mapped[int] = mapped_column(Integer, default=0)
    first_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    built_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    hours: Mapped[int] = mapped_column(Integer, default=24, server_default="24")
    """The period's length: 24 (a day), 1 (an hour) or 168 (a week from Monday 00:00 UTC)."""


#: What `ix_rollups_cover_*` hold after (aggregation, metric, run or day).
COVERED = ("cohort_id", "fingerprint", "probe_key", "bucket", "n", "k", "sessions",
           "flagged_sessions")  # fmt: skip


class RollupRow(Base):
    """Sufficient statistics of one run (or one compacted day) × cohort × metric × detector
    version (× bucket).

    ``aggregation`` is ``errors`` (failed requests), ``flags`` (flagged scores), ``latency``
    or ``bins`` (``bucket`` is the bin index) or ``categories`` (``bucket`` is the category,
    ``probe_key`` the probe). Exactly one of ``run_id`` and ``day_id`` (a day, hour or week)
    is set. Sessions are counted per run; a round's session ids are its own, so they add up
    across runs.
    """

    __tablename__ = "rollups"
    __table_args__ = (
        Index(None, "run_id"),
        Index(None, "day_id"),
        # Covering: compare and reports read these columns of one metric's runs or days
        # without touching the table (a year of a fleet is millions of rollup rows).
        *(
            Index(f"ix_rollups_cover_{key}", "aggregation", "metric", key, *COVERED)
            for key in ("run_id", "day_id")
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), nullable=True
    )
    day_id: Mapped[int | None] = mapped_column(
        ForeignKey("rollup_days.id", ondelete="CASCADE"), nullable=True
    )
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id"))
    aggregation: Mapped[str] = mapped_column(String(16))
    metric: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64), default="")
    probe_key: Mapped[str] = mapped_column(String(128), default="")
    bucket: Mapped[str] = mapped_column(Text, default="")
    n: Mapped[int] = mapped_column(BigInteger, default=0)
    k: Mapped[int] = mapped_column(BigInteger, default=0)
    sessions: Mapped[int] = mapped_column(BigInteger, default=0)
    flagged_sessions: Mapped[int] = mapped_column(BigInteger, default=0)
    first_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """Errors and flags: when the group's first result started (the round's time in reports)."""
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """Errors and flags: when its newest result started (a cohort's "last seen")."""
