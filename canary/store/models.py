"""The SQL schema, as SQLAlchemy 2.x ORM models. Every change here is an alembic revision.

Results carry a `cohort_id` (a row per distinct label set) so "results of cohort X in window T"
is an indexed range scan, and every result keeps its suite version through `probe → suite`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from canary.store import partitions  # noqa: F401  (registers the partitioned primary keys)
from canary.store.columns import NAMING_CONVENTION, Base, BigId, Json, UTCDateTime, utcnow


class EndpointRow(Base):
    """An endpoint as last seen in a fleet config."""

    __tablename__ = "endpoints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    base_url: Mapped[str] = mapped_column(String(1024))
    flavour: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(255))
    labels: Mapped[dict[str, str]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CohortRow(Base):
    """A distinct set of cohort labels (endpoint, model, pool, region, route, load, …)."""

    __tablename__ = "cohorts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of the canonical JSON of `labels`."""
    labels: Mapped[dict[str, str]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SuiteRow(Base):
    """One version of a probe suite; a changed suite is a new row, never an update."""

    __tablename__ = "suites"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProbeRow(Base):
    """One probe of one suite version, with its full spec."""

    __tablename__ = "probes"
    __table_args__ = (UniqueConstraint("suite_id", "probe_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    suite_id: Mapped[int] = mapped_column(ForeignKey("suites.id", ondelete="CASCADE"))
    probe_key: Mapped[str] = mapped_column(String(128))
    """The probe's id inside its suite."""
    kind: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict[str, Any]] = mapped_column(Json)


class RunRow(Base):
    """One round: a suite sent to a selection of endpoints under one load shape."""

    __tablename__ = "runs"
    __table_args__ = (Index(None, "started_at"), Index(None, "status"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    suite_id: Mapped[int] = mapped_column(ForeignKey("suites.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="running")
    """running, completed, aborted (interrupted), failed, abandoned (its process died)."""
    trigger: Mapped[str] = mapped_column(String(32), default="cli")
    load_shape: Mapped[str] = mapped_column(String(32), default="probe")
    selection: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    host: Mapped[str] = mapped_column(String(255), default="")
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """When the alert monitors consumed this run (set once, in the same transaction)."""
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The process running the round on `host`: how `canary runs` tells a dead run."""
    pid_started: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """That process's start, in clock ticks since boot (Linux), so a reused pid is not it."""
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """The running process's last sign of life; a stale one means the run was abandoned."""


class ResultRow(Base):
    """One probe request and everything it returned. Inserted whole, never updated."""

    __tablename__ = "results"
    __table_args__ = (
        Index(None, "cohort_id", "started_at"),
        Index(None, "endpoint_id", "started_at"),
        Index(None, "run_id", "endpoint_id", "error_kind"),  # a run's endpoints and counts
        Index(None, "started_at"),
        {"postgresql_partition_by": "RANGE (started_at)"},  # canary.store.partitions
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    """Unique; on PostgreSQL the primary key is (id, started_at), as partitions require."""
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    probe_id: Mapped[int] = mapped_column(ForeignKey("probes.id"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("endpoints.id"))
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id"))
    session_id: Mapped[str] = mapped_column(String(64))
    repeat_index: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    latency_ms: Mapped[float] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error_detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    served_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    request: Mapped[dict[str, Any]] = mapped_column(Json)
    output_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    finish_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    response: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    """tokens (token, logprob, top, token_id), usage and response headers."""
    pruned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """Set when retention removed the raw output (text, tokens); scores are kept."""


class ScoreRow(Base):
    """One detector metric of one result (long format).

    It carries its result's start time so that, on PostgreSQL, scores are partitioned by month
    with their results (`canary.store.partitions`). There is no foreign key to `results`
    (a partitioned table cannot be referenced by id alone); `save_scores` reads the start time
    from the result, so a score of a missing result is refused all the same.
    """

    __tablename__ = "scores"
    __table_args__ = (
        UniqueConstraint("result_id", "detector", "metric", "result_started_at"),
        Index(None, "detector", "metric"),
        {"postgresql_partition_by": "RANGE (result_started_at)"},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    result_id: Mapped[int] = mapped_column(BigId)
    detector: Mapped[str] = mapped_column(String(64))
    detector_version: Mapped[str] = mapped_column(String(32))
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    evidence: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    result_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """Its result's `started_at`: the partition key on PostgreSQL."""


class ReferenceOutputRow(Base):
    """Cached reference-model output, keyed by model fingerprint + prompt + params."""

    __tablename__ = "reference_outputs"
    __table_args__ = (UniqueConstraint("model_fingerprint", "cache_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    model_fingerprint: Mapped[str] = mapped_column(String(64))
    cache_key: Mapped[str] = mapped_column(String(64))
    prompt: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(Json)
    output_text: Mapped[str] = mapped_column(Text)
    tokens: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    """Per position: token, token_id, logprob, top (token → logprob)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DetectorSpecRow(Base):
    """The arguments behind a detector fingerprint, so every score can be traced and rebuilt."""

    __tablename__ = "detector_specs"
    __table_args__ = (UniqueConstraint("detector", "fingerprint"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    detector: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(32))
    """Stored in `scores.detector_version`: the version plus a hash of the arguments."""
    version: Mapped[str] = mapped_column(String(32))
    args: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BaselineRow(Base):
    """Per cohort × metric summaries of a healthy period, named, for `compare` and the daemon."""

    __tablename__ = "baselines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    selector: Mapped[str] = mapped_column(Text)
    """The selector the baseline was captured from, as typed."""
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    """The aggregate: cohorts → labels, suite versions, metrics (counts or histograms)."""
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class ChangeRow(Base):
    """A deploy, config, load-balancer or model change canary was told about."""

    __tablename__ = "changes"
    __table_args__ = (Index(None, "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    change_id: Mapped[str] = mapped_column(String(128), unique=True)
    """The caller's id for the change (a deploy id, a ticket)."""
    kind: Mapped[str] = mapped_column(String(16))
    """deploy, config, lb or model."""
    labels: Mapped[dict[str, str]] = mapped_column(Json)
    """Which cohorts it touches, as label=value pairs (empty: the whole fleet)."""
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    """When the change took effect."""
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ScheduleSlotRow(Base):
    """One scheduled slot of one schedule × load shape, claimed by exactly one daemon.

    The unique (schedule, slot_at) key makes a second daemon's claim fail; the lease lets a
    surviving daemon take over a slot whose owner died (`lease_until` in the past).
    """

    __tablename__ = "schedule_slots"
    __table_args__ = (
        UniqueConstraint("schedule", "slot_at"),
        Index(None, "status", "lease_until"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    schedule: Mapped[str] = mapped_column(String(160))
    """``schedule-name/load-shape``."""
    slot_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """The nominal fire time (before jitter), identical on every daemon."""
    status: Mapped[str] = mapped_column(String(16))
    """running, done, failed, aborted (released on shutdown), missed (too old to recover)."""
    owner: Mapped[str] = mapped_column(String(255))
    lease_until: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), nullable=True
    )
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class MonitorRow(Base):
    """The sequential test of one cohort × metric, carried from round to round."""

    __tablename__ = "monitors"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of the canonical JSON of cohort labels + metric (the alert fingerprint)."""
    labels: Mapped[dict[str, str]] = mapped_column(Json)
    metric: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="ok")
    """ok, pending or firing."""
    state: Mapped[dict[str, Any]] = mapped_column(Json)
    """The detector's state (`CusumRateDetector.to_dict`) and the recovery evidence."""
    alert_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """The open alert of this monitor, if any."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlertRow(Base):
    """One alert: a cohort × metric that regressed against its baseline, with its evidence."""

    __tablename__ = "alerts"
    __table_args__ = (Index(None, "fingerprint", "status"), Index(None, "change_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    labels: Mapped[dict[str, str]] = mapped_column(Json)
    metric: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    """pending, firing or resolved (a pending alert that clears is resolved without firing)."""
    pending_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    onset_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """Estimated start of the regression: where the detector's evidence began to rise."""
    change_id: Mapped[str | None] = mapped_column(
        ForeignKey("changes.change_id", ondelete="SET NULL"), nullable=True
    )
    """The recorded change this alert is attributed to."""
    baseline_rate: Mapped[float] = mapped_column(Float)
    margin: Mapped[float] = mapped_column(Float)
    k: Mapped[int] = mapped_column(Integer, default=0)
    n: Mapped[int] = mapped_column(Integer, default=0)
    """Flagged and total probes since the onset."""
    score: Mapped[float] = mapped_column(Float, default=0.0)
    """The detector's evidence (nats) at the last evaluation."""
    evidence_ids: Mapped[list[int]] = mapped_column(Json, default=list)
    """Result ids of flagged outputs behind the alert (retention keeps these)."""
    impact: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    """Request- and session-level impact since the onset."""
    detail: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    last_evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NotificationRow(Base):
    """An alert-group state change to tell the sinks about (the outbox)."""

    __tablename__ = "notifications"
    __table_args__ = (Index(None, "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    group_key: Mapped[str] = mapped_column(String(200))
    """``change:ID`` for alerts attributed to a change, else ``alert:FINGERPRINT``."""
    status: Mapped[str] = mapped_column(String(16))
    """firing or resolved."""
    payload: Mapped[dict[str, Any]] = mapped_column(Json)


class DeliveryRow(Base):
    """One notification to one sink: retried with backoff until delivered or expired."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("notification_id", "sink"),
        Index(None, "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id", ondelete="CASCADE"))
    sink: Mapped[str] = mapped_column(String(64))
    """The sink's name in the daemon config (never its URL: that may be a secret)."""
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending, delivered or expired."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """A daemon sending it holds it until then; another may take it after."""
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# The rollup tables live in their own module; imported here so `Base.metadata` holds every table.
from canary.store.rollup_models import RollupDayRow, RollupRow, RollupRunRow  # noqa: E402

__all__ = [
    "NAMING_CONVENTION",
    "AlertRow",
    "Base",
    "BaselineRow",
    "BigId",
    "ChangeRow",
    "CohortRow",
    "DeliveryRow",
    "DetectorSpecRow",
    "EndpointRow",
    "Json",
    "MonitorRow",
    "NotificationRow",
    "ProbeRow",
    "ReferenceOutputRow",
    "ResultRow",
    "RollupDayRow",
    "RollupRow",
    "RollupRunRow",
    "RunRow",
    "ScheduleSlotRow",
    "ScoreRow",
    "SuiteRow",
    "UTCDateTime",
    "utcnow",
]
