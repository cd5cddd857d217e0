"""Reusing the scores of repeated outputs within a pass stores exactly what scoring every
result from scratch stores, and counts each repeat once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from canary.config.fleet import EndpointConfig
from canary.probes.model import Probe, Suite
from canary.records import ResultRecord, TokenLogprob
from canary.scoring import score_stored
from canary.scoring.pipeline import ScoreMemo
from canary.store import Store, open_store
from canary.store.models import ScoreRow

T0 = datetime(2026, 11, 1, tzinfo=UTC)
SUITE = Suite(
    name="repeats",
    probes=[
        Probe(id="prose", kind="script", prompt="Describe the function."),
        Probe(id="code", kind="code", prompt="Write a function.", expect={"language": "python"}),
        Probe(id="answer", kind="fixed", prompt="2+2=", expect={"exact": "4"}),
    ],
)
ENDPOINT = EndpointConfig(name="pool-a", base_url="http://a.test/v1", model="m")
CUT_CODE = "```python\ndef f(x):\n    return ("


def _outputs() -> list[tuple[str, str | None, str | None, str | None, list[TokenLogprob] | None]]:
    """(probe, text, error kind, finish reason, tokens) of 60 results, most of them repeats;
    the same text under another finish reason or other tokens is a different input."""
    few = [TokenLogprob("It", -0.1, {"It": -0.1, "The": -2.5})]
    other = [TokenLogprob("It", -0.3, {"It": -0.3, "The": -1.5})]
    out: list[tuple[str, str | None, str | None, str | None, list[TokenLogprob] | None]] = []
    for i in range(10):
        out += [
            ("prose", "It returns the number of items.", None, "stop", None),
            ("prose", "It returns the number of items.", None, "stop", few if i % 2 else other),
            ("prose", "It returns the สวัสดี items." if i % 5 == 0 else "It returns.", None,
             "stop", None),
            ("code", CUT_CODE, None, "stop" if i % 2 else "length", None),
            ("answer", "4" if i % 3 else "5", None, "stop", None),
            ("prose", None, "http_5xx", None, None),
        ]  # fmt: skip
    return out


def _stored(url: str) -> Store:
    store = open_store(url)
    suite_id = store.register_suite(SUITE)
    store.register_endpoints([ENDPOINT])
    run_id = store.start_run(suite_id)
    records = [
        ResultRecord(
            endpoint="pool-a",
            probe_id=probe,
            repeat_index=i,
            session_id=str(i),
            labels={**ENDPOINT.cohort_labels(), "load": "probe"},
            request={},
            started_at=T0 + timedelta(seconds=i),
            latency_ms=1.0,
            attempts=1,
            status_code=503 if error else 200,
            error_kind=error,
            output_text=text,
            finish_reason=finish,
            tokens=tokens,
        )
        for i, (probe, text, error, finish, tokens) in enumerate(_outputs())
    ]
    store.save_results(run_id, suite_id, records)
    store.finish_run(run_id)
    return store


def _scores(store: Store) -> list[tuple[Any, ...]]:
    columns = (ScoreRow.result_id, ScoreRow.detector, ScoreRow.detector_version, ScoreRow.metric)
    query = select(*columns, ScoreRow.value, ScoreRow.flagged, ScoreRow.evidence)
    with store.engine.connect() as conn:
        return sorted(tuple(row) for row in conn.execute(query.order_by(*columns)))


def test_memo_stores_the_scores_of_a_pass_without_it_and_counts_repeats(tmp_path: Path) -> None:
    fresh = _stored(f"sqlite:///{tmp_path / 'fresh.db'}")
    memo = _stored(f"sqlite:///{tmp_path / 'memo.db'}")
    without = score_stored(fresh, reference=False, memo=False, batch_size=7)
    with_memo = score_stored(memo, reference=False, batch_size=7)  # repeats across batches too

    assert _scores(memo) == _scores(fresh)
    assert with_memo.scores == without.scores > 0
    assert with_memo.flagged == without.flagged
    distinct = len({(p, t, e, f, repr(tokens)) for p, t, e, f, tokens in _outputs()})
    assert with_memo.memo_hits == len(_outputs()) - distinct
    assert without.memo_hits == 0
    assert with_memo.to_dict()["memo_hits"] == with_memo.memo_hits


def test_memo_forgets_the_least_recently_used_entry_past_its_size() -> None:
    memo = ScoreMemo(size=2)
    memo.put(b"a", [("script", [])])
    memo.put(b"b", [("code", [])])
    assert memo.get(b"a") == [("script", [])]  # now b is the least recently used
    memo.put(b"c", [("fixed", [])])
    assert memo.get(b"b") is None
    assert memo.get(b"a") is not None and memo.get(b"c") is not None
    assert memo.hits == 3
