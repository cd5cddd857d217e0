"""What the store hands back: small frozen values, and the joins that build them from rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select, true

from canary.records import TokenLogprob, ToolCall, finite_logprob
from canary.store.models import (
    CohortRow,
    EndpointRow,
    ProbeRow,
    ResultRow,
    RollupRunRow,
    RunRow,
    ScoreRow,
    SuiteRow,
)
from canary.store.rows import bytes_from_json

#: Ids per `IN (…)` list: well under SQLite's and PostgreSQL's bound-parameter limits.
_CHUNK = 1000


def _plain(value: Any) -> Any:
    """JSON-ready copy: datetimes as ISO 8601, dataclasses as dicts."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, TokenLogprob | ScoreView | ToolCall):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, bytes):  # token bytes, as OpenAI sends them: a list of ints
        return list(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class RunSummary:
    """One run and what it stored, counted by the database."""

    id: int
    suite: str
    suite_version: str
    status: str
    trigger: str
    load_shape: str
    started_at: datetime
    finished_at: datetime | None
    n_results: int
    n_errors: int
    """Results with an `error_kind` (the request failed or its body could not be parsed)."""
    endpoints: list[str]
    """Names of the endpoints with at least one stored result, sorted."""
    host: str = ""
    pid: int | None = None
    """The process that ran (or runs) the round, on `host`."""
    heartbeat_at: datetime | None = None
    """Its last sign of life: an `abandoned` run finished then."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class ScoreView:
    """One detector metric of a result, with what made it."""

    detector: str
    detector_version: str
    metric: str
    value: float | None
    flagged: bool
    evidence: dict[str, Any] | None


@dataclass(frozen=True)
class StoredResult:
    """One stored probe request with its suite, cohort and scores joined in."""

    id: int
    run_id: int
    suite: str
    suite_version: str
    probe_id: str
    """The probe's key inside its suite (not the probes table id)."""
    probe_kind: str
    endpoint: str
    labels: dict[str, str]
    """The cohort labels the result was stored under."""
    session_id: str
    repeat_index: int
    started_at: datetime
    latency_ms: float
    attempts: int
    status_code: int | None
    error_kind: str | None
    error_detail: str | None
    served_by: str | None
    request: dict[str, Any]
    output_text: str | None
    finish_reason: str | None
    tokens: list[TokenLogprob] | None
    usage: dict[str, int] | None
    response_headers: dict[str, str]
    scores: list[ScoreView]
    pruned_at: datetime | None = None
    """When retention removed the raw output (text, tokens, headers, error detail)."""
    system_fingerprint: str | None = None
    """The backend configuration the reply named (also the result's cohort label)."""
    tool_calls: tuple[ToolCall, ...] | None = None
    """The reply's tool calls when the request offered tools (see `ResultRecord.tool_calls`)."""

    @property
    def ok(self) -> bool:
        return self.error_kind is None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


def tokens_from_json(raw: Any) -> list[TokenLogprob] | None:
    """Rebuild the token list stored in `results.response["tokens"]`.

    Tolerant of rows written before every logprob was checked: a chosen-token logprob that is
    null or not a number reads back as None (missing), such an alternative is left out of
    `top`, and a position that is not an object reads as an empty token. A stored row must
    never make every later scoring pass fail.
    """
    if not isinstance(raw, list):
        return None
    return [_token_from_json(t) for t in raw]


def _token_from_json(t: Any) -> TokenLogprob:
    if not isinstance(t, dict):
        return TokenLogprob(token="", logprob=None)
    token = t.get("token")
    raw_bytes = bytes_from_json(t.get("bytes"))
    top = t.get("top")
    token_id = t.get("token_id")
    return TokenLogprob(
        token=token if isinstance(token, str) else "" if token is None else str(token),
        logprob=finite_logprob(t.get("logprob")),
        top={
            str(k): value
            for k, v in (top.items() if isinstance(top, dict) else ())
            if (value := finite_logprob(v)) is not None
        },
        token_id=token_id if isinstance(token_id, int) and not isinstance(token_id, bool) else None,
        bytes=raw_bytes,
    )


def tool_calls_from_json(raw: Any) -> tuple[ToolCall, ...] | None:
    """Rebuild the tool calls stored in `results.response["tool_calls"]`; absent is None (no
    tools were offered), and a value of the wrong type reads as missing, never an error."""
    if not isinstance(raw, list):
        return None
    calls = []
    for item in raw:
        c = item if isinstance(item, dict) else {}
        calls.append(
            ToolCall(
                id=_str_or_none(c.get("id")),
                name=_str_or_none(c.get("name")),
                arguments=_str_or_none(c.get("arguments")),
                type=_str_or_none(c.get("type")),
                problem=_str_or_none(c.get("problem"))
                if isinstance(item, dict)
                else "stored tool call is not an object",
            )
        )
    return tuple(calls)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


_RESULT_COLUMNS = (
    ResultRow.id,
    ResultRow.run_id,
    SuiteRow.name.label("suite"),
    SuiteRow.version.label("suite_version"),
    ProbeRow.probe_key,
    ProbeRow.kind.label("probe_kind"),
    EndpointRow.name.label("endpoint"),
    CohortRow.labels,
    ResultRow.session_id,
    ResultRow.repeat_index,
    ResultRow.started_at,
    ResultRow.latency_ms,
    ResultRow.attempts,
    ResultRow.status_code,
    ResultRow.error_kind,
    ResultRow.error_detail,
    ResultRow.served_by,
    ResultRow.request,
    ResultRow.output_text,
    ResultRow.finish_reason,
    ResultRow.response,
    ResultRow.pruned_at,
)


def fetch_results(
    conn: Connection, where: Sequence[ColumnElement[bool]], *, limit: int | None = None
) -> list[StoredResult]:
    """Results matching `where`, oldest first, with suite, probe, endpoint, cohort and scores."""
    stmt = (
        select(*_RESULT_COLUMNS)
        .join(ProbeRow, ProbeRow.id == ResultRow.probe_id)
        .join(SuiteRow, SuiteRow.id == ProbeRow.suite_id)
        .join(EndpointRow, EndpointRow.id == ResultRow.endpoint_id)
        .join(CohortRow, CohortRow.id == ResultRow.cohort_id)
        .where(*where)
        .order_by(ResultRow.started_at, ResultRow.id)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = conn.execute(stmt).mappings().all()
    scores = _scores(conn, [row["id"] for row in rows])
    results = []
    for row in rows:
        fields = dict(row)
        response = fields.pop("response")
        if not isinstance(response, dict):
            response = {}
        fields["probe_id"] = fields.pop("probe_key")
        headers = response.get("headers")
        fingerprint = response.get("system_fingerprint")
        results.append(
            StoredResult(
                **fields,
                tokens=tokens_from_json(response.get("tokens")),
                usage=response.get("usage"),
                response_headers=dict(headers) if isinstance(headers, dict) else {},
                scores=scores.get(row["id"], []),
                system_fingerprint=fingerprint if isinstance(fingerprint, str) else None,
                tool_calls=tool_calls_from_json(response.get("tool_calls")),
            )
        )
    return results


def _scores(conn: Connection, result_ids: Sequence[int]) -> dict[int, list[ScoreView]]:
    found: dict[int, list[ScoreView]] = {}
    for start in range(0, len(result_ids), _CHUNK):
        chunk = result_ids[start : start + _CHUNK]
        rows = conn.execute(
            select(
                ScoreRow.result_id,
                ScoreRow.detector,
                ScoreRow.detector_version,
                ScoreRow.metric,
                ScoreRow.value,
                ScoreRow.flagged,
                ScoreRow.evidence,
            )
            .where(ScoreRow.result_id.in_(chunk))
            .order_by(ScoreRow.result_id, ScoreRow.detector, ScoreRow.metric)
        )
        for result_id, *view in rows:
            found.setdefault(result_id, []).append(ScoreView(*view))
    return found


def _run_counts(conn: Connection, ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Run id → (results, failed results): from the run's rollup when it has one (a rollup is
    dropped in the transaction that changes its run), else counted from its results."""
    counts = {
        int(run_id): (int(n), int(errors or 0))
        for run_id, n, errors in conn.execute(
            select(RollupRunRow.run_id, RollupRunRow.results, RollupRunRow.errors).where(
                RollupRunRow.run_id.in_(ids), RollupRunRow.errors.is_not(None)
            )
        )
    }
    uncounted = [i for i in ids if i not in counts]
    if uncounted:
        counts |= {
            int(run_id): (int(n), int(n_errors))
            for run_id, n, n_errors in conn.execute(
                select(ResultRow.run_id, func.count(), func.count(ResultRow.error_kind))
                .where(ResultRow.run_id.in_(uncounted))
                .group_by(ResultRow.run_id)
            )
        }
    return counts


def run_summaries(
    conn: Connection, where: Sequence[ColumnElement[bool]], *, limit: int | None = None
) -> list[RunSummary]:
    """Runs matching `where`, newest first; counts and endpoint names come from GROUP BY."""
    stmt = (
        select(
            RunRow.id,
            SuiteRow.name,
            SuiteRow.version,
            RunRow.status,
            RunRow.trigger,
            RunRow.load_shape,
            RunRow.started_at,
            RunRow.finished_at,
            RunRow.host,
            RunRow.pid,
            RunRow.heartbeat_at,
        )
        .join(SuiteRow, SuiteRow.id == RunRow.suite_id)
        .where(*where)
        .order_by(RunRow.started_at.desc(), RunRow.id.desc())
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    runs = conn.execute(stmt).all()
    ids = [run.id for run in runs]
    counts = _run_counts(conn, ids)
    names: dict[int, list[str]] = {}
    # One index seek per run × endpoint (the endpoints table is small), not a scan of the
    # run's results: a run of 500k results lists its endpoints in milliseconds. A scalar
    # subquery, not EXISTS: PostgreSQL turns EXISTS into a semi-join that, on a freshly
    # written run (no statistics yet), hashes all of the run's results.
    first = (
        select(ResultRow.run_id)
        .where(ResultRow.run_id == RunRow.id, ResultRow.endpoint_id == EndpointRow.id)
        .limit(1)
        .scalar_subquery()
    )
    ran = first.is_not(None)
    for run_id, name in conn.execute(
        select(RunRow.id, EndpointRow.name)
        .select_from(RunRow)
        .join(EndpointRow, true())  # every pair; `ran` keeps those with results
        .where(RunRow.id.in_(ids), ran)
        .order_by(RunRow.id, EndpointRow.name)
    ):
        names.setdefault(run_id, []).append(name)
    return [
        RunSummary(
            id=run.id,
            suite=run.name,
            suite_version=run.version,
            status=run.status,
            trigger=run.trigger,
            load_shape=run.load_shape,
            started_at=run.started_at,
            finished_at=run.finished_at,
            n_results=counts.get(run.id, (0, 0))[0],
            n_errors=counts.get(run.id, (0, 0))[1],
            endpoints=names.get(run.id, []),
            host=run.host,
            pid=run.pid,
            heartbeat_at=run.heartbeat_at,
        )
        for run in runs
    ]
