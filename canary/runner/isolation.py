"""Isolation of one reply from the rest of a round: the worst case for a reply is one error row.

A round's batches mix endpoints, so a reply the store refuses must cost that reply alone, and a
bug in handling one reply must cost that request alone. Both become a `malformed` error record
that says why, so every request is still exactly one row; a store that cannot take even that
is failing as a whole, and its error is raised, since records are never silently dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from canary.records import ResultRecord
from canary.sanitize import one_line

__all__ = ["crashed_record", "store_isolated", "unstorable_record"]

OnResults = Callable[[list[ResultRecord]], None]

#: Longest error_detail of an error record made here (as the endpoint client's).
MAX_DETAIL = 500

logger = logging.getLogger(__name__)


def store_isolated(on_results: OnResults, batch: list[ResultRecord]) -> list[ResultRecord]:
    """Write `batch` so that one unstorable record costs one error row, never the batch.

    The batch is written in one call; if that raises, record by record, and a record that still
    cannot be written is replaced by a `malformed` error record saying why (see
    `unstorable_record`), so every request is still exactly one row. If that minimal record
    cannot be written either, the store itself is failing (down, locked, the run gone): that
    error is raised, since records must never be silently dropped. `on_results` must be
    all-or-nothing per call (`Store.save_results` is one transaction). Returns what was stored.
    """
    try:
        on_results(batch)
        return batch
    except Exception as exc:
        if len(batch) == 1:
            return [_store_in_place(on_results, batch[0], exc)]
    stored: list[ResultRecord] = []
    for record in batch:
        try:
            on_results([record])
            stored.append(record)
        except Exception as exc:
            stored.append(_store_in_place(on_results, record, exc))
    return stored


def _store_in_place(on_results: OnResults, record: ResultRecord, exc: Exception) -> ResultRecord:
    """Store the error record for `record`; raises when even that fails (the store is down)."""
    replacement = unstorable_record(record, exc)
    on_results([replacement])
    logger.warning(
        "endpoint %s, probe %s: %s",
        one_line(record.endpoint),
        one_line(record.probe_id),
        replacement.error_detail,
    )
    return replacement


def unstorable_record(record: ResultRecord, reason: BaseException) -> ResultRecord:
    """The error record stored in place of `record`, which the store refused for `reason`.

    It keeps only what identifies the request (endpoint, probe, repeat, session, labels, time)
    and what canary measured; nothing the endpoint sent, which is what could not be stored.
    """
    return ResultRecord(
        endpoint=record.endpoint,
        probe_id=record.probe_id,
        repeat_index=record.repeat_index,
        session_id=record.session_id,
        labels=dict(record.labels),
        request={},
        started_at=record.started_at,
        latency_ms=record.latency_ms,
        attempts=record.attempts,
        status_code=record.status_code,
        error_kind="malformed",
        error_detail=_detail(f"could not store the reply: {_reason(reason)}"),
    )


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _detail(text: str) -> str:
    """One line, scrubbed of secrets and control characters, at most `MAX_DETAIL` long."""
    text = one_line(text)
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def crashed_record(
    endpoint: str,
    labels: dict[str, str],
    sent: tuple[str, int, str],
    started_at: datetime,
    latency_ms: float,
    exc: BaseException,
) -> ResultRecord:
    """The error record of a request whose reply canary failed to process (a bug, logged).

    `sent` is the request's (probe id, repeat index, session id).
    """
    probe_id, repeat_index, session_id = sent
    return ResultRecord(
        endpoint=endpoint,
        probe_id=probe_id,
        repeat_index=repeat_index,
        session_id=session_id,
        labels=dict(labels),
        request={},
        started_at=started_at,
        latency_ms=latency_ms,
        attempts=1,
        error_kind="malformed",
        error_detail=_detail(f"could not process the reply: {_reason(exc)}"),
    )
